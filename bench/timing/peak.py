"""The GEMM peaks a latency row's % of peak stands against: measured in the run (watched for other load, measured
again when disturbed or when a row comes out above 100 %), and each row's percentage or the reason it has none."""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional

from . import load, measure

log = logging.getLogger("bench")


CALIBRATION_TRIES = 2  # a calibration disturbed by other load is measured again once, then given up


def calibrate(device, native_bf16: bool):
    """The GEMM peaks, and the machine's load while they were measured (CPU only: other processes slow a CPU's
    matmuls, not a GPU's). A peak measured while another process held a core is too low, and every % of it too
    high (issue #10's kind of figure): a disturbed calibration is measured again, and if the second one is
    disturbed too, no peak is kept (the rows then say why they have no % of peak)."""
    if device.type != "cpu":
        return measure.calibrate(device, native_bf16=native_bf16), None
    for _ in range(CALIBRATION_TRIES):
        with load.watch() as figures:
            calibration = measure.calibrate(device, native_bf16=native_bf16)
        if not figures.get("disturbed"):
            return calibration, figures or None
        log.warning(
            "GEMM calibration disturbed: other processes used %.2f cores (steal %.1f %%) while it ran",
            figures["other_cores"],
            100 * figures["steal_fraction"],
        )
    return {}, figures


def recheck(out, per_backend, calibration, device, emulated, native_bf16):
    """A row above 100 % of its peak: the calibration measured less than the model reached (load the watch missed).
    Measured again, each peak kept as the better; rows still above are flagged `peak_exceeded` and noted."""
    if not any((r.get("pct_of_gemm_peak") or 0) > 100 for r in out["latency"]):
        return calibration, None
    again, again_load = calibrate(device, native_bf16)
    better = {k: max(v, again.get(k, 0.0)) for k, v in calibration.items()}
    out["latency"] = rows(per_backend, better, device, emulated)
    still = [r for r in out["latency"] if (r.get("pct_of_gemm_peak") or 0) > 100]
    for row in still:
        row["peak_exceeded"] = True
    if still:
        where = sorted({f"{r['backend']} b{r.get('batch_size')} s{r.get('seq_len')}" for r in still})
        out["notes"].append(
            f"% of GEMM peak above 100 ({', '.join(where)}) after a second calibration"
            + (" (disturbed by other load: discarded)" if not again else "")
            + ": the calibration ran slower than the model's own matmuls; those percentages are unsound "
            "(timing.calibration_recheck)"
        )
    return better, {"first": calibration, "second": again, "second_load": again_load, "still_over": len(still)}


def rows(
    per_backend: Dict[str, Dict[str, Any]],
    calibration: Dict[str, float],
    device,
    emulated: Optional[Dict[str, str]] = None,
    calibration_load: Optional[Dict[str, Any]] = None,
) -> List[Dict[str, Any]]:
    rows = []
    emulated = emulated or {}
    if not calibration and calibration_load and calibration_load.get("disturbed"):
        not_calibrated = (
            f"no % of peak: the GEMM calibration was disturbed ({CALIBRATION_TRIES} tries; the last: other "
            f"processes used {calibration_load['other_cores']:.2f} cores, steal "
            f"{100 * calibration_load['steal_fraction']:.1f} %): re-measure on a quiet machine"
        )
    else:
        not_calibrated = "no % of peak: calibration off (timing.calibrate=false)"
    for name, b in per_backend.items():
        flags = {"emulated": name in emulated}
        if b.get("status") != "ok":
            rows.append({"backend": name, "status": b.get("status", "failed"), "error": b.get("reason"), **flags})
            continue
        key, why_not = measure.peak_key(name, b["dtype"], device, emulated.get(name))
        for shape in b["shapes"]:
            row = {"backend": name, "device": str(device), "dtype": b["dtype"], **flags, **shape}
            if shape.get("achieved_flops_per_s") and key and calibration.get(key):
                row["pct_of_gemm_peak"] = 100.0 * shape["achieved_flops_per_s"] / calibration[key]
                row["gemm_peak_key"] = key
            elif shape.get("status") == "ok":
                row["peak_note"] = why_not or (
                    not_calibrated if not calibration else f"no % of peak: {key} not calibrated"
                )
            rows.append(row)
    return rows
