"""The Speech service could not read a recording: the recording's fault, or the set-up's?

The service says so with `INPUT_ACCESS_CODES` (``InvalidRecordingsUri``,
``InaccessibleCustomerStorage``): as a failed job's error code, or when it refuses the
submission itself. What the app concludes, in this order:

1. The recording was deleted meanwhile: ``InputDeleted``. (An overwritten recording never
   gets here: its job is dropped as superseded first.)
2. SAS mode, and the SAS may have expired before the service read it (the job was found
   failed SAS_VALIDITY_HOURS or more after it was signed, less a margin for clock skew and
   the time the POST took): another submission with a fresh SAS may well work. The caller
   resubmits, up to MAX_JOB_ATTEMPTS (`None` is returned).
3. Otherwise the recording is still there, unchanged, and the access the app handed over was
   valid when the service used it. Then the storage account and the Speech resource do not
   fit SPEECH_STORAGE_ACCESS, and every submission fails the same way, whatever the
   recording: it is reported at once as a configuration problem, not as the recording's
   fault, and no attempt is spent on resubmitting it.
   - ``SasRefused`` (SAS mode): storage refused a valid SAS, as a locked-down account
     (public network access or SAS off) does. Use SPEECH_STORAGE_ACCESS=identity there.
   - ``SpeechIdentityDenied`` (identity mode): the Speech resource's managed identity could
     not read the plain URL: its system-assigned identity is off, it lacks Storage Blob Data
     Reader, or the storage firewall has no resource-instance rule for it.

What this gives up: in SAS mode, a storage outage at the very moment the service read the
recording is also reported as ``SasRefused`` (its advice says to upload it again then),
where it used to be resubmitted. Telling the two apart would need the service to say more
than it does; burning every attempt of every recording on a set-up that cannot work is the
worse default.
"""

from __future__ import annotations

import logging
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
) -> JobRecord | None:
    """Report a recording the service could not read, or return None: resubmit it.

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
    access = rt.settings.speech_storage_access
    if (
        access == "sas"
        and not at_submission  # refused with a SAS signed a moment ago: it was valid
        and sas_may_have_expired(
            signed_at=record.submitted_at,
            failed_at=record.finished_at or rt.clock(),
            validity=timedelta(hours=rt.settings.sas_validity_hours),
        )
    ):
        return None
    if access == "identity":
        explanation = (
            "the Speech service could not read the recording with its own managed identity "
            "(SPEECH_STORAGE_ACCESS=identity: the app sends plain blob URLs without SAS)"
        )
    else:
        explanation = (
            "the Speech service could not read the recording through its SAS although the SAS "
            f"was still valid (SPEECH_STORAGE_ACCESS=sas, SAS_VALIDITY_HOURS="
            f"{rt.settings.sas_validity_hours:g})"
        )
    log.error(
        "job=%s: %s; the recording is unchanged, so the storage set-up is at fault: %s %s",
        record.key,
        explanation,
        code,
        message,
    )
    return fail_job(
        rt,
        record,
        reason_code=SPEECH_IDENTITY_DENIED_CODE if access == "identity" else SAS_REFUSED_CODE,
        message=(
            f"{explanation}; the recording is unchanged, so this is a configuration problem "
            f"between the storage account and the Speech resource, not the recording's "
            f"fault. The service said: {code}: {message}"
        ),
        service_error_code=code,
    )
