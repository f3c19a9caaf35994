"""The Speech service could not read a recording: the recording's fault, or the set-up's?

The service says so with `INPUT_ACCESS_CODES` (``InvalidRecordingsUri``,
``InaccessibleCustomerStorage``): as a failed job's error code, or when it refuses the
submission itself. What the app concludes, in this order:

1. The recording was deleted meanwhile: ``InputDeleted``. (An overwritten recording never
   gets here: its job is dropped as superseded first.)
2. SAS mode, and the SAS may have expired before the service read it (the job was found
   failed SAS_VALIDITY_HOURS or more after it was signed, less a margin for clock skew and
   the time the POST took): another submission with a fresh SAS may well work. The caller
   resubmits, up to MAX_JOB_ATTEMPTS.
3. Otherwise the recording is still there, unchanged, and the access the app handed over was
   valid when the service used it. Two causes look exactly alike from here: the storage
   account was unreachable for a while (an outage), or the account and the Speech resource
   do not fit SPEECH_STORAGE_ACCESS, and then every submission fails the same way, whatever
   the recording. One more submission tells them apart: the app only resubmits once it can
   reach storage again itself (the poller needs its table), so an outage is over by then,
   while a set-up that cannot work fails again.
   - On the job's first attempt: resubmitted once, to confirm.
   - On a later attempt (or when the service refused the POST itself): reported as a
     configuration problem, not as the recording's fault, and no further attempt is spent:
     - ``SasRefused`` (SAS mode): storage refused a valid SAS, as a locked-down account
       (public network access or SAS off) does. Use SPEECH_STORAGE_ACCESS=identity there.
     - ``SpeechIdentityDenied`` (identity mode): the Speech resource's managed identity could
       not read the plain URL: its system-assigned identity is off, it lacks Storage Blob
       Data Reader, or the storage firewall has no resource-instance rule for it.

So a set-up that cannot work costs each recording two quick, failed jobs, not
MAX_JOB_ATTEMPTS, and its report blames the set-up; a storage outage still ends in
transcripts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from shared.input_versions import InputStatus, input_status
from shared.jobs import JobRecord
from shared.outcomes import fail_job
from shared.runtime import Runtime

log = logging.getLogger(__name__)

__all__ = [
    "INPUT_DELETED_CODE",
    "SAS_REFUSED_CODE",
    "SPEECH_IDENTITY_DENIED_CODE",
    "Resubmit",
    "judge_unreadable_input",
    "sas_may_have_expired",
]

INPUT_DELETED_CODE: Final = "InputDeleted"
SAS_REFUSED_CODE: Final = "SasRefused"
SPEECH_IDENTITY_DENIED_CODE: Final = "SpeechIdentityDenied"
# The SAS is signed just before the POST, and `submitted_at` is taken after it returns
# (retries included); Storage's clock may differ from ours. A failure seen this close to
# the SAS's expiry counts as "may have expired".
_EXPIRY_MARGIN: Final = timedelta(minutes=15)
# Attempts after which valid access failing again is the set-up's fault (see above).
_CONFIRMED_AFTER: Final = 2


@dataclass(frozen=True)
class Resubmit:
    """The verdict "submit the recording again"; `why` is added to the job's message."""

    why: str


def sas_may_have_expired(
    *, signed_at: datetime | None, failed_at: datetime, validity: timedelta
) -> bool:
    """True when a SAS signed at `signed_at` could have run out by `failed_at`."""
    if signed_at is None:  # no record of the submission time: assume the worst
        return True
    return failed_at - signed_at >= validity - _EXPIRY_MARGIN


def judge_unreadable_input(
    rt: Runtime,
    record: JobRecord,
    *,
    code: str,
    message: str,
    at_submission: bool = False,
) -> JobRecord | Resubmit:
    """Report a recording the service could not read (the job as it ends), or `Resubmit`.

    `code`/`message` are what the service said; `at_submission` is True when it refused
    the POST itself (then the SAS was brand new). See the module docstring for the rules.
    """
    if input_status(rt, record) is InputStatus.GONE:
        return fail_job(
            rt,
            record,
            reason_code=INPUT_DELETED_CODE,
            message=f"the recording was deleted before the service read it ({message})",
            service_error_code=code,
        )
    s = rt.settings
    access = s.speech_storage_access
    if not at_submission:
        failed_at = record.finished_at or rt.clock()
        if access == "sas" and sas_may_have_expired(
            signed_at=record.submitted_at,
            failed_at=failed_at,
            validity=timedelta(hours=s.sas_validity_hours),
        ):
            waited = (failed_at - (record.submitted_at or record.created)).total_seconds()
            return Resubmit(
                f"the job failed {waited / 3600:.1f} h after its SAS was signed, "
                f"SAS_VALIDITY_HOURS={s.sas_validity_hours:g}: a fresh SAS may work"
            )
        if record.attempts < _CONFIRMED_AFTER:
            log.warning(
                "job=%s: the service could not read the unchanged recording with valid access "
                "(%s); submitting it once more to tell a storage outage from a set-up that "
                "cannot work",
                record.key,
                code,
            )
            return Resubmit(
                "the recording is unchanged and its access was valid: submitted once more, to "
                "tell a passing storage outage from a storage set-up the service cannot read"
            )
    if access == "identity":
        explanation = (
            "the Speech service could not read the recording with its own managed identity "
            "(SPEECH_STORAGE_ACCESS=identity: the app sends plain blob URLs without SAS)"
        )
    else:
        explanation = (
            "the Speech service could not read the recording through its SAS although the SAS "
            f"was still valid (SPEECH_STORAGE_ACCESS=sas, SAS_VALIDITY_HOURS="
            f"{s.sas_validity_hours:g})"
        )
    tries = "when it was submitted" if at_submission else f"in {record.attempts} attempts"
    log.error(
        "job=%s: %s %s; the recording is unchanged, so the storage set-up is at fault: %s %s",
        record.key,
        explanation,
        tries,
        code,
        message,
    )
    return fail_job(
        rt,
        record,
        reason_code=SPEECH_IDENTITY_DENIED_CODE if access == "identity" else SAS_REFUSED_CODE,
        message=(
            f"{explanation}, {tries}; the recording is unchanged, so this is a configuration "
            f"problem between the storage account and the Speech resource, not the "
            f"recording's fault. The service said: {code}: {message}"
        ),
        service_error_code=code,
    )
