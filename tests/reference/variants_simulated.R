# Reference fits of R ordinal::clm and clmm with a style x variant interaction on
# tests/reference/variants_simulated.csv (written by make_variants_simulated.py): prompt
# variants nested in styles, so R reports the interactions of style c aliased (NA) and
# leaves them out. From the project root:
# Rscript tests/reference/variants_simulated.R -> variants_simulated.json
suppressPackageStartupMessages({library(ordinal); library(jsonlite)})
source("tests/reference/clmm_common.R")
d <- read.csv("tests/reference/variants_simulated.csv", stringsAsFactors = FALSE)
mixed <- c(list(formula = "score ~ style * variant + detail + (1 | rater) + (1 | prompt_id)"),
           clmm_reference(d, score ~ style * variant + detail + (1 | rater) + (1 | prompt_id),
                          repeats = 1))
for (col in names(d)) if (is.character(d[[col]])) d[[col]] <- factor(d[[col]], levels = unique(d[[col]]))
d$score <- factor(d$score, levels = sort(unique(d$score)), ordered = TRUE)
fit <- clm(score ~ style * variant + detail, data = d)
co <- coef(summary(fit))
beta <- fit$beta[!is.na(fit$beta)]
fixed <- list(formula = "score ~ style * variant + detail", n = nrow(d),
              loglik = as.numeric(logLik(fit)), cutpoints = as.list(fit$alpha),
              beta = as.list(beta), se = as.list(co[names(beta), "Std. Error"]),
              aliased = names(fit$beta)[is.na(fit$beta)],
              r_version = R.version.string,
              ordinal_version = as.character(packageVersion("ordinal")))
writeLines(toJSON(list(fixed = fixed, mixed = mixed), digits = I(10), auto_unbox = TRUE,
                  pretty = TRUE), "tests/reference/variants_simulated.json")
