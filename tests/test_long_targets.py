"""Long targets (passages) are written and checked with their own step length and thresholds."""

from __future__ import annotations

import pytest
import torch

from editors.errors import InvalidSettingsError
from editors.memoir_hparams import MemoirHparams
from editors.teacher_forcing import target_ids
from test_memoir_editor import REQUESTS, make_editor

SHORT, LONG = REQUESTS[1], REQUESTS[2]
LONG_AFTER = 2  # tokens: REQUESTS[2]'s target is longer, REQUESTS[1]'s is not


def written_R(request, **settings) -> torch.Tensor:
    editor = make_editor(prefix_mode="none", loss_threshold=0.0, max_steps=3, **settings)
    editor.edit(request)
    return editor.memory.R.detach().clone()


def test_the_requests_fall_on_either_side_of_the_length():
    tokenizer = make_editor().tokenizer
    assert len(target_ids(tokenizer, SHORT.target)) <= LONG_AFTER < len(target_ids(tokenizer, LONG.target))


def test_a_long_target_is_written_with_the_long_lr_and_a_short_one_with_the_lr():
    long_settings = dict(long_target_tokens=LONG_AFTER, long_target_lr=1.0, long_target_loss_threshold=0.0)
    assert not torch.allclose(written_R(LONG, lr=1.0), written_R(LONG))  # the two step lengths write differently
    torch.testing.assert_close(written_R(LONG, **long_settings), written_R(LONG, lr=1.0))
    torch.testing.assert_close(written_R(SHORT, **long_settings), written_R(SHORT))


def test_a_long_target_stops_at_the_long_threshold_and_says_it_converged():
    editor = make_editor(prefix_mode="none", loss_threshold=0.0, max_steps=3, long_target_tokens=LONG_AFTER,
                         long_target_loss_threshold=1e9)
    long, short = editor.edit(LONG), editor.edit(SHORT)
    assert (long.steps, long.extra["converged"]) == (0, True)
    assert (short.steps, short.extra["converged"]) == (3, False)


def test_consolidation_checks_each_edit_against_the_limit_of_its_length():
    editor = make_editor(prefix_mode="none", consolidate_above=0.0, long_target_tokens=LONG_AFTER, long_target_consolidate_above=1e9)
    for request in REQUESTS:
        editor.edit(request)
    assert editor.consolidate() == [REQUESTS[0].id, SHORT.id]


def test_for_target_changes_only_a_long_targets_settings():
    hparams = MemoirHparams(lr=10.0, long_target_tokens=16, long_target_lr=5.0, long_target_loss_threshold=0.1,
                            long_target_consolidate_above=0.25)
    assert hparams.for_target(16) is hparams
    long = hparams.for_target(17)
    assert (long.lr, long.loss_threshold, long.consolidate_above) == (5.0, 0.1, 0.25)
    assert MemoirHparams(long_target_lr=5.0).for_target(1000).lr == 1.0  # 0 tokens: no target is long


@pytest.mark.parametrize("settings", [{"long_target_tokens": -1}, {"long_target_tokens": 1.5}, {"long_target_lr": 0},
                                      {"long_target_loss_threshold": -0.1}, {"long_target_consolidate_above": -1}])
def test_bad_long_target_settings_are_refused(settings):
    with pytest.raises(InvalidSettingsError, match=next(iter(settings))):
        MemoirHparams(**settings)
