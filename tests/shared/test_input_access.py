"""When could a recording's SAS have run out before the service read it?"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.input_access import sas_may_have_expired

SIGNED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TWO_HOURS = timedelta(hours=2)


@pytest.mark.parametrize(
    ("failed_after", "may_have_expired"),
    [
        (timedelta(seconds=5), False),  # failed at once: the SAS was valid
        (timedelta(hours=1, minutes=44), False),
        (timedelta(hours=1, minutes=45), True),  # within the margin of its expiry
        (timedelta(hours=3), True),
    ],
)
def test_a_sas_may_have_expired_only_near_or_after_its_expiry(
    failed_after: timedelta, may_have_expired: bool
) -> None:
    assert (
        sas_may_have_expired(signed_at=SIGNED, failed_at=SIGNED + failed_after, validity=TWO_HOURS)
        is may_have_expired
    )


def test_an_unknown_signing_time_assumes_the_worst() -> None:
    assert sas_may_have_expired(signed_at=None, failed_at=SIGNED, validity=TWO_HOURS)
