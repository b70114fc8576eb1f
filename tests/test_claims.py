"""The rules the book reads its runs with (:mod:`mrife.claims`): verdicts, plateaus and
the open-choice decision, each on inputs whose answer is worked out by hand."""

import math

import pandas as pd
import pytest

from mrife.claims import Decision, decide, plateau_epoch, verdict


def test_verdict_reads_the_interval_against_the_paper():
    assert verdict(0.01, 0.05, +0.03) == "reproduced", "interval above 0, paper positive: reproduced"
    assert verdict(-0.05, -0.01, -0.03) == "reproduced", "interval below 0, paper negative: reproduced"
    assert verdict(-0.05, -0.01, +0.03) == "reversed", "interval below 0, paper positive: reversed"
    assert verdict(0.01, 0.05, -1) == "reversed", "interval above 0, paper negative: reversed"
    assert verdict(-0.01, 0.05, +0.03) == "inconclusive", "interval holding 0: inconclusive"
    assert verdict(0.0, 0.05, +0.03) == "inconclusive", "an end at exactly 0 holds 0: inconclusive"
    with pytest.raises(ValueError, match="no sign"):
        verdict(0.01, 0.05, 0)
    with pytest.raises(ValueError, match="not an interval"):
        verdict(0.05, 0.01, 1)


def test_plateau_epoch_is_the_first_epoch_within_the_margin_of_the_best_moving_average():
    def history(values):
        return pd.DataFrame({"val_lIoU": values})

    slow = [history([0.0, 0.0, 0.1, 0.2, 0.3, 0.35, 0.36, 0.36, 0.37, 0.37]),
            history([0.0, 0.1, 0.1, 0.2, 0.3, 0.31, 0.36, 0.36, 0.35, 0.37, 0.99])]  # cut to 10 epochs
    fast = [history([0.3, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4])]
    table = plateau_epoch({"slow": slow, "fast": fast})
    # slow, seed mean: 0, .05, .1, .2, .3, .33, .36, .36, .36, .37; its 3-epoch average, last
    # epochs .3167, .35, .36, .3633, first comes within 0.01 of its maximum at epoch 9
    assert table.loc["slow", "plateau epoch"] == 9 and table.loc["slow", "epochs"] == 10
    assert table.loc["slow", "its maximum"] == pytest.approx((0.36 + 0.36 + 0.37) / 3)
    assert table.loc["fast", "plateau epoch"] == 4, "the first full window within the margin"
    assert table.attrs["epochs"] == 9, "every model on its plateau"
    with pytest.raises(ValueError, match="fewer than"):
        plateau_epoch({"short": [history([0.1, 0.2])]})


def test_the_choice_rule_decides_only_beyond_seed_noise_and_with_enough_seeds():
    default = {0: 0.30, 1: 0.32, 2: 0.31}  # mean 0.31, sd 0.01
    clear = {0: 0.40, 1: 0.41, 2: 0.42}  # mean 0.41, sd 0.01: leads by 0.10
    close = {0: 0.31, 1: 0.33, 2: 0.32}  # mean 0.32: leads by 0.01, not more than the sd 0.01
    assert decide({"default": default, "clear": clear, "close": close}) == \
        {"default": Decision.NONE, "clear": Decision.CHOSEN, "close": Decision.NONE}
    assert decide({"default": default, "close": close}) == \
        {"default": Decision.NO_CLEAR_WINNER, "close": Decision.WITHIN_NOISE}
    assert decide({"default": clear, "other": default})["default"] is Decision.DEFAULT_LEADS
    assert decide({"default": default, "clear": {0: 0.40, 1: 0.41}}) == \
        {"default": Decision.NONE, "clear": Decision.UNDECIDED}, "fewer than 3 seeds decide nothing"
    assert decide({"default": default, "unrun": {}}) == {"default": Decision.NONE, "unrun": Decision.NOT_RUN}
    assert decide({"a": {0: 0.3}, "b": {0: 0.3}}, min_seeds=1)["a"] is Decision.DEFAULT_LEADS, \
        "a tie goes to the candidate listed first"


def test_a_decision_shows_as_its_text():
    assert f"{Decision.CHOSEN}" == "chosen" and str(Decision.NOT_RUN) == "not run" and not Decision.NONE
