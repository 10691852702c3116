# Reference fit of R ordinal::clmm on tests/reference/clmm_seed141.csv (written by
# make_clmm_seed141.py): data on which glidemed's Cholesky step once failed. From the
# project root: Rscript tests/reference/clmm_seed141.R -> clmm_seed141.json
suppressPackageStartupMessages({library(ordinal); library(jsonlite)})
source("tests/reference/clmm_common.R")
d <- read.csv("tests/reference/clmm_seed141.csv", stringsAsFactors = FALSE)
f <- "score ~ style + detail + condition + (1 | rater) + (1 | prompt_id)"
out <- c(list(formula = f), clmm_reference(d, as.formula(f), repeats = 1))
writeLines(toJSON(out, digits = I(10), auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/clmm_seed141.json")
