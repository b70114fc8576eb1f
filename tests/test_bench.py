"""The kernel benchmark's report (``python -m mrife.kernels.bench``): ratios to the eager
reference at each size, as the book's kernel chapter and the markdown table read them."""

import pytest
import torch

from mrife.kernels import masked_supcon
from mrife.kernels.bench import main, make_inputs, markdown, relative

ROWS = [{"backend": "torch", "N": 1024, "C": 256, "time_s": 0.002, "peak_extra_bytes": 32 * 2**20},
        {"backend": "triton", "N": 1024, "C": 256, "time_s": 0.005, "peak_extra_bytes": 0},
        {"backend": "torch", "N": 4096, "C": 256, "time_s": 0.004, "peak_extra_bytes": 512 * 2**20},
        {"backend": "triton", "N": 4096, "C": 256, "time_s": 0.036, "peak_extra_bytes": 2**19}]


def test_relative_divides_by_the_reference_at_the_same_size():
    ratios = {(r["backend"], r["N"]): (r["time_ratio"], r["memory_ratio"]) for r in relative(ROWS)}
    assert ratios[("torch", 4096)] == (1.0, 1.0)
    assert ratios[("triton", 1024)] == (2.5, 0.0)
    assert ratios[("triton", 4096)] == (9.0, 1 / 1024)


def test_markdown_has_a_line_per_case_with_its_ratios():
    lines = markdown(ROWS).splitlines()
    assert len(lines) == 2 + len(ROWS)
    assert lines[-1] == "| 4096 | 256 | triton | 0.036 | 0.5 | 9.00 | 0.001 |"


def test_channels_last_inputs_hold_the_same_values_with_each_rows_channels_side_by_side():
    plain, last = make_inputs(64, 64), make_inputs(64, 64, channels_last=True)
    assert last[0].stride(1) == 1 and last[3].stride(1) == 1 and last[0].requires_grad
    assert all(torch.equal(a, b) for a, b in zip(plain, last))
    assert torch.equal(masked_supcon(*plain, backend="torch"), masked_supcon(*last, backend="torch"))


def test_the_layout_is_measured_on_cuda_only():
    with pytest.raises(SystemExit):
        main(["--device", "cpu", "--channels-last"])
