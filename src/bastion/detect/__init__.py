"""Attack-in-progress detection: stateful detectors for the guard's detection hook.

`similarity` links each query to earlier ones (per principal and across
principals) and judges the lineage; `fingerprint` is a Blacklight-style content
hash index for images; `extraction` watches each principal's distance
distribution and coverage. All fit on benign traffic (`Profile`) and run
inline in the guard; `bastion detect eval` measures them against real attacks.
"""

from bastion.detect.profile import Profile, fit_profile

__all__ = ["Profile", "fit_profile"]
