# Reference numbers for the agreement of an automated score with ratings, on
# tests/reference/agreement_simulated.csv (written by make_agreement_simulated.py):
# ordinal::clmm and clm with the standardised score as covariate, and R's own rank correlations.
# From the project root: Rscript tests/reference/agreement_simulated.R -> agreement_simulated.json
suppressPackageStartupMessages({library(ordinal); library(jsonlite)})
source("tests/reference/clmm_common.R")
d <- read.csv("tests/reference/agreement_simulated.csv", stringsAsFactors = FALSE)
f <- score ~ automated + style + (1 | rater) + (1 | prompt_id)
out <- list(
  clmm = c(list(formula = "score ~ automated + style + (1 | rater) + (1 | prompt_id)"),
           clmm_reference(d[, c("rater", "prompt_id", "style", "score", "automated")], f, repeats = 1)),
  clm = {
    d2 <- d; d2$style <- factor(d2$style, levels = unique(d2$style))
    d2$score <- factor(d2$score, levels = sort(unique(d2$score)), ordered = TRUE)
    fit <- clm(score ~ automated + style, data = d2)
    list(beta = as.list(fit$beta), se = as.list(coef(summary(fit))[names(fit$beta), "Std. Error"]),
         loglik = as.numeric(logLik(fit)))
  },
  kendall = cor(d$good, d$score, method = "kendall"),
  spearman = cor(d$good, d$score, method = "spearman"),
  kendall_by_style = as.list(sapply(split(d, d$style), function(s) cor(s$good, s$score, method = "kendall")))
)
writeLines(toJSON(out, digits = I(10), auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/agreement_simulated.json")
