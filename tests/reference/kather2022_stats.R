# Reference values for the statistics on the published ratings of Kather et al. (2022).
# Independent of glidemed's statistics code: reads the spreadsheet with readxl and computes
# everything with base R, ordinal::clm and textbook formulas (Dunn, Pratt/zsplit signed rank).
#
# Run from the project root:
#   glidemed prompts kather2022 > /tmp/prompts.csv
#   Rscript tests/reference/kather2022_stats.R /tmp/prompts.csv tests/reference/kather2022_stats.json
# (the prompt list only maps prompt text to style, topic and detail).
suppressPackageStartupMessages({library(readxl); library(ordinal); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
prompts <- read.csv(args[1], stringsAsFactors = FALSE)
raw <- read_excel("../shared/kather2022/observer_study_glide_v1_merge.xlsx", sheet = "raw data",
                  col_types = "text")
styles <- c("microscopy", "histopathology", "xray", "mri", "ct", "photo", "poster", "illustration")

# Long table, 'nonsensical' counted as 0, 'missing' left out.
long <- do.call(rbind, lapply(c("Style", "Content"), function(a) do.call(rbind, lapply(1:3, function(o) {
  v <- trimws(raw[[sprintf("%s_Observer%d", a, o)]])
  v[v == "nonsensical"] <- "0"
  data.frame(text = trimws(raw$Prompt), aspect = tolower(a), rater = o,
             score = suppressWarnings(as.integer(v)))
}))))
long <- long[!is.na(long$score), ]
m <- match(long$text, trimws(prompts$text)); stopifnot(!anyNA(m))
long <- cbind(long, prompts[m, c("id", "style", "style_group", "topic", "detail")])
long$style <- factor(long$style, levels = styles)
long$detail <- factor(long$detail, levels = c("short", "detailed"))

med <- aggregate(score ~ id + style + style_group + topic + detail + aspect, data = long, FUN = median)

dunn <- function(x, g) {  # Dunn (1964) z-test on the joint ranks, tie-corrected
  r <- rank(x); N <- length(x); t <- table(x)
  C <- sum(t^3 - t) / (12 * (N - 1))
  rb <- tapply(r, g, mean); n <- tapply(r, g, length)
  out <- list()
  for (i in 1:(length(styles) - 1)) for (j in (i + 1):length(styles)) {
    a <- styles[i]; b <- styles[j]
    z <- (rb[a] - rb[b]) / sqrt((N * (N + 1) / 12 - C) * (1 / n[a] + 1 / n[b]))
    out[[length(out) + 1]] <- 2 * pnorm(-abs(z))
  }
  unlist(out)
}

signed_rank <- function(d, zero_method) {  # normal approximation, tie-corrected, no continuity
  n <- length(d); r <- rank(abs(d)); nz <- sum(d == 0)
  if (zero_method == "pratt") {
    rp <- sum(r[d > 0]); rm <- sum(r[d < 0])
    mu <- (n * (n + 1) - nz * (nz + 1)) / 4
    v <- (n * (n + 1) * (2 * n + 1) - nz * (nz + 1) * (2 * nz + 1)) / 24
    t <- table(r[d != 0])
  } else {  # zsplit
    rp <- sum(r[d > 0]) + sum(r[d == 0]) / 2; rm <- sum(r[d < 0]) + sum(r[d == 0]) / 2
    mu <- n * (n + 1) / 4; v <- n * (n + 1) * (2 * n + 1) / 24
    t <- table(r)
  }
  v <- v - sum(t^3 - t) / 48
  list(statistic = min(rp, rm), p = 2 * pnorm(-abs((rp - mu) / sqrt(v))))
}

out <- list()
for (a in c("style", "content")) {
  res <- list()
  for (unit in c("prompt_median", "rating")) {
    d <- if (unit == "prompt_median") med[med$aspect == a, ] else long[long$aspect == a, ]
    d$style <- factor(as.character(d$style), levels = styles)
    kw <- kruskal.test(score ~ style, data = d)
    pairs <- list()
    for (i in 1:7) for (j in (i + 1):8) {
      x <- d$score[d$style == styles[i]]; y <- d$score[d$style == styles[j]]
      w <- wilcox.test(x, y, exact = FALSE, correct = TRUE)
      pairs[[length(pairs) + 1]] <- data.frame(a = styles[i], b = styles[j], u = unname(w$statistic),
                                               p_mw = w$p.value)
    }
    pairs <- do.call(rbind, pairs)
    pairs$p_mw_holm <- p.adjust(pairs$p_mw, "holm"); pairs$p_mw_BH <- p.adjust(pairs$p_mw, "BH")
    pairs$p_dunn <- dunn(d$score, d$style)
    pairs$p_dunn_holm <- p.adjust(pairs$p_dunn, "holm")
    rad <- d$style_group == "radiology"
    g <- wilcox.test(d$score[rad], d$score[!rad], exact = FALSE, correct = TRUE)
    # short vs detailed matched by style + topic (+ rater on the rating unit)
    key <- if (unit == "prompt_median") c("style", "topic") else c("style", "topic", "rater")
    s <- d[d$detail == "short", c(key, "score")]; l <- d[d$detail == "detailed", c(key, "score")]
    mm <- merge(s, l, by = key, suffixes = c("_short", "_detailed"))
    diff <- mm$score_detailed - mm$score_short
    res[[unit]] <- list(
      style_medians = as.list(tapply(d$score, d$style, median)),
      kruskal = list(statistic = unname(kw$statistic), p = kw$p.value),
      pairwise = pairs,
      radiology = list(statistic = unname(g$statistic), p = g$p.value),
      detail = list(n = length(diff), pratt = signed_rank(diff, "pratt"),
                    zsplit = signed_rank(diff, "zsplit")))
  }
  fit <- clm(factor(score) ~ style + detail, data = long[long$aspect == a, ], link = "logit")
  co <- coef(summary(fit))
  res$clm <- list(terms = rownames(co), estimate = unname(co[, 1]), se = unname(co[, 2]),
                  loglik = as.numeric(logLik(fit)), n = nobs(fit))
  out[[a]] <- res
}
out$versions <- list(R = R.version.string, ordinal = as.character(packageVersion("ordinal")))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), args[2])
