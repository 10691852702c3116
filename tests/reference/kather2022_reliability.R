# Reference values for rater agreement on the published ratings of Kather et al. (2022):
# Krippendorff's ordinal alpha by its definition (coincidence matrix, Krippendorff 2011),
# quadratic-weighted Cohen's kappa and ICC from the psych package (r-cran-psych).
# 'nonsensical' counted as 0, 'missing' as not rated; items = prompts (rows).
#   Rscript tests/reference/kather2022_reliability.R tests/reference/kather2022_reliability.json
suppressPackageStartupMessages({library(readxl); library(psych); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
raw <- read_excel("../shared/kather2022/observer_study_glide_v1_merge.xlsx", sheet = "raw data",
                  col_types = "text")
scores <- function(a) sapply(1:3, function(o) {
  v <- trimws(raw[[sprintf("%s_Observer%d", a, o)]]); v[v == "nonsensical"] <- "0"
  suppressWarnings(as.integer(v))
})  # items x raters

kripp_ordinal <- function(x, values = 0:4) {
  V <- length(values); o <- matrix(0, V, V)
  for (u in seq_len(nrow(x))) {
    r <- x[u, !is.na(x[u, ])]; m <- length(r); if (m < 2) next
    for (i in seq_len(m)) for (j in seq_len(m)) if (i != j) {
      c <- match(r[i], values); k <- match(r[j], values)
      o[c, k] <- o[c, k] + 1 / (m - 1)
    }
  }
  nc <- rowSums(o); n <- sum(nc); d2 <- matrix(0, V, V)
  for (c in 1:V) for (k in 1:V) {
    lo <- min(c, k); hi <- max(c, k)
    d2[c, k] <- (sum(nc[lo:hi]) - (nc[c] + nc[k]) / 2)^2
  }
  1 - (n - 1) * sum(o * d2) / sum(outer(nc, nc) * d2)
}

out <- list()
for (a in c("Style", "Content")) {
  x <- scores(a)
  kappas <- list()
  for (p in list(c(1, 2), c(1, 3), c(2, 3))) {
    y <- na.omit(x[, p])
    ck <- cohen.kappa(y, levels = 0:4)  # weighted kappa uses quadratic weights by default
    kappas[[paste0("observer", p[1], "|observer", p[2])]] <- ck$weighted.kappa
  }
  icc <- ICC(na.omit(x), lmer = FALSE)$results
  row <- function(type) as.list(icc[icc$type == type, c("ICC", "lower bound", "upper bound")])
  out[[tolower(a)]] <- list(alpha = kripp_ordinal(x), kappa = kappas,
                            icc2_1 = row("ICC2"), icc3_1 = row("ICC3"))
}
out$versions <- list(R = R.version.string, psych = as.character(packageVersion("psych")))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), args[1])
