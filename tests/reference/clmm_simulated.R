# Reference fits of R ordinal::clmm (Laplace, defaults) on simulated crossed ratings,
# tests/reference/clmm_simulated.csv (written by make_clmm_simulated.py). From the
# project root: Rscript tests/reference/clmm_simulated.R -> clmm_simulated.json
suppressPackageStartupMessages({library(ordinal); library(jsonlite)})
source("tests/reference/clmm_common.R")
d <- read.csv("tests/reference/clmm_simulated.csv", stringsAsFactors = FALSE)
models <- c(crossed = "score ~ style + detail + (1 | rater) + (1 | prompt_id)",
            three = "score ~ style + detail + (1 | rater) + (1 | prompt_id) + (1 | topic)",
            prompt_only = "score ~ style + (1 | prompt_id)")
out <- lapply(models, function(f) c(list(formula = f), clmm_reference(d, as.formula(f), repeats = 1)))
writeLines(toJSON(out, digits = I(10), auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/clmm_simulated.json")
