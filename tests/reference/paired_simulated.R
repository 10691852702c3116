# Reference fit of R ordinal::clmm (Laplace, defaults) of the ordinal paired-comparison model
# on tests/reference/paired_simulated.csv (written by make_paired_simulated.py): choice on
# the x_right - x_left design (sd15 the reference), random intercepts for rater and prompt;
# position bias -mean(thresholds) with its SE from vcov. From the project root:
# Rscript tests/reference/paired_simulated.R -> paired_simulated.json
suppressPackageStartupMessages({library(ordinal); library(jsonlite)})
d <- read.csv("tests/reference/paired_simulated.csv", stringsAsFactors = FALSE, na.strings = "")
d$x_sdxl <- (d$right == "sdxl") - (d$left == "sdxl")
d$x_glide <- (d$right == "glide") - (d$left == "glide")
fit <- clmm(factor(choice, ordered = TRUE) ~ x_sdxl + x_glide + (1 | rater) + (1 | prompt_id),
            data = d)
co <- coef(summary(fit))
alpha <- names(fit$alpha)
w <- rep(-1 / length(alpha), length(alpha))  # bias = -mean(theta)
out <- list(
  n = nrow(d), loglik = as.numeric(logLik(fit)), converged = fit$optRes$convergence == 0,
  beta = as.list(fit$beta), se = as.list(co[names(fit$beta), "Std. Error"]),
  cutpoints = as.list(fit$alpha), cutpoint_se = as.list(co[alpha, "Std. Error"]),
  sd = lapply(VarCorr(fit), function(v) as.numeric(attr(v, "stddev"))),
  position_bias = sum(w * fit$alpha),
  position_bias_se = sqrt(drop(t(w) %*% vcov(fit)[alpha, alpha] %*% w)),
  versions = list(R = R.version.string, ordinal = as.character(packageVersion("ordinal"))))
writeLines(toJSON(out, digits = I(10), auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/paired_simulated.json")
