import pytest

# The shared checks in these helper modules assert; let pytest explain their failures too.
pytest.register_assert_rewrite("tests.integration.harness", "tests.integration.devhost_process")
