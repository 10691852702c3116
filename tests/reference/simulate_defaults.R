# Default parameters of glidemed.simulate, fitted to the published ratings of
# Kather et al. (2022). Run from the project root:
#   Rscript tests/reference/simulate_defaults.R
# Model per aspect (nonsensical counted as 0, as in the paper's per-style medians):
#   clmm(score ~ style + detail + (1|rater) + (1|prompt), link = "logit")
# Effects are reported with R's sign convention P(Y <= k) = F(theta_k - eta), so a
# larger effect means higher scores; style effects are relative to microscopy.
suppressPackageStartupMessages({library(ordinal); library(readxl); library(jsonlite)})
raw <- as.data.frame(read_excel("../shared/kather2022/observer_study_glide_v1_merge.xlsx",
                                sheet = "raw data"))
styles <- c("microscopy", "histopathology", "xray", "mri", "ct", "photo", "poster", "illustration")
topics_per_style <- 34
# Rows follow the study's prompt order; detailed descriptions are the ones with a comma.
detail <- ifelse(grepl(",", raw$Prompt), "detailed", "short")
out <- list()
blups <- list()
for (aspect in c("Style", "Content")) {
  long <- do.call(rbind, lapply(1:3, function(i) {
    v <- as.character(raw[[sprintf("%s_Observer%d", aspect, i)]])
    v[v == "nonsensical"] <- "0"
    data.frame(prompt = seq_len(nrow(raw)), rater = paste0("observer", i),
               style = rep(styles, each = topics_per_style), detail = detail,
               score = suppressWarnings(as.integer(v)))
  }))
  long <- long[!is.na(long$score), ]
  long$score <- factor(long$score, ordered = TRUE)
  long$style <- factor(long$style, levels = styles)
  long$detail <- factor(long$detail, levels = c("short", "detailed"))
  long$prompt <- factor(long$prompt)
  fit <- clmm(score ~ style + detail + (1 | rater) + (1 | prompt), data = long,
              link = "logit", nAGQ = 1)
  b <- coef(fit)
  key <- tolower(aspect)
  out[[key]] <- list(
    cutpoints = unname(b[1:4]),
    style = as.list(setNames(c(0, unname(b[paste0("style", styles[-1])])), styles)),
    detail_detailed = unname(b["detaildetailed"]),
    rater_sd = unname(sqrt(VarCorr(fit)$rater[1])),
    prompt_sd = unname(sqrt(VarCorr(fit)$prompt[1])),
    loglik = as.numeric(logLik(fit)), n = nrow(long))
  blups[[key]] <- ranef(fit)$prompt[, 1]
}
out$prompt_correlation <- cor(blups$style, blups$content)
write_json(out, "tests/reference/simulate_defaults.json", auto_unbox = TRUE, digits = 6,
           pretty = TRUE)
