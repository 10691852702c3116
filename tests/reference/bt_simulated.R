# Reference Bradley-Terry fit of R BradleyTerry2::BTm (logit link, defaults) on the decisive
# answers of tests/reference/bt_simulated.csv (written by make_bt_simulated.py). From the
# project root: Rscript tests/reference/bt_simulated.R -> bt_simulated.json
suppressPackageStartupMessages({library(BradleyTerry2); library(jsonlite)})
d <- read.csv("tests/reference/bt_simulated.csv", stringsAsFactors = FALSE, na.strings = "")
levels <- c("sd15", "sdxl", "glide", "flux")  # the first is the reference, fixed at 0
d <- d[!is.na(d$winner), ]
d$loser <- ifelse(d$winner == d$left, d$right, d$left)
counts <- aggregate(list(n = rep(1, nrow(d))), list(winner = d$winner, loser = d$loser), sum)
pairs <- data.frame(player1 = factor(counts$winner, levels = levels),
                    player2 = factor(counts$loser, levels = levels),
                    win1 = counts$n, win2 = 0)
fit <- BTm(cbind(win1, win2), player1, player2, data = pairs, refcat = levels[1])
abilities <- BTabilities(fit)
out <- list(conditions = levels, n_decisive = nrow(d),
            ability = unname(abilities[levels, "ability"]),
            se = unname(abilities[levels, "s.e."]),
            loglik = as.numeric(logLik(fit)),
            versions = list(R = R.version.string,
                            BradleyTerry2 = as.character(packageVersion("BradleyTerry2"))))
writeLines(toJSON(out, digits = I(10), auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/bt_simulated.json")
