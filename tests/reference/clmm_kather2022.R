# Reference fits of R ordinal::clmm (Laplace, defaults) on the published ratings of
# Kather et al. (2022), read from ../shared/kather2022/ (run from the project root):
#   Rscript tests/reference/clmm_kather2022.R
# Writes tests/reference/clmm_kather2022.json. The tidy table is built as in
# tests/test_mixed.py: prompt_id p001..p272 in sheet order, 34 prompts per style in the
# order of the sheet, detail 'detailed' when the prompt holds a comma, raters
# observer1..3; 'nonsensical' and 'missing' cells are excluded.
suppressPackageStartupMessages({library(ordinal); library(readxl); library(jsonlite)})

xlsx <- "../shared/kather2022/observer_study_glide_v1_merge.xlsx"
raw <- read_excel(xlsx, sheet = "raw data", col_types = "text")
styles <- c("microscopy", "histopathology", "xray", "mri", "ct", "photo", "poster",
            "illustration")
rows <- list()
for (i in seq_len(nrow(raw))) for (obs in 1:3) for (aspect in c("style", "content")) {
  col <- paste0(if (aspect == "style") "Style" else "Content", "_Observer", obs)
  rows[[length(rows) + 1]] <- data.frame(
    rater = paste0("observer", obs), prompt_id = sprintf("p%03d", i),
    style = styles[(i - 1) %/% 34 + 1],
    detail = ifelse(grepl(",", raw$Prompt[i], fixed = TRUE), "detailed", "short"),
    aspect = aspect, value = trimws(raw[[col]][i]))
}
tidy <- do.call(rbind, rows)
tidy <- tidy[tidy$value %in% as.character(0:4), ]
tidy$score <- as.integer(tidy$value)

source("tests/reference/clmm_common.R")
out <- list()
for (aspect in c("style", "content")) {
  d <- tidy[tidy$aspect == aspect, ]
  out[[aspect]] <- clmm_reference(d, score ~ style + detail + (1 | rater) + (1 | prompt_id))
}
writeLines(toJSON(out, digits = I(10), auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/clmm_kather2022.json")
