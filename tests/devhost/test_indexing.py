import pytest

from devhost.indexing import AppLoadError, find_function_app, import_app_module, index_app
from tests.devhost.conftest import APPS, load_fixture_app


def test_functions_bindings_and_callables_are_indexed():
    module = load_fixture_app("queue_app")
    specs = index_app(find_function_app(module))
    assert [s.name for s in specs] == ["on_message"]
    spec = specs[0]
    assert spec.trigger_type == "queueTrigger"
    assert spec.trigger["queueName"] == "%DEVHOST_TEST_QUEUE%"
    assert {b["type"] for b in spec.bindings} == {"queueTrigger", "queue"}
    assert spec.user_function.__name__ == "on_message"
    assert spec.user_function.__module__ == "queue_app"
    assert spec.parameters() == ["msg", "out"]


def test_each_load_is_a_fresh_app_so_indexing_works_again():
    first = find_function_app(load_fixture_app("http_app"))
    second = find_function_app(load_fixture_app("http_app"))
    assert first is not second
    assert [s.name for s in index_app(first)] == [s.name for s in index_app(second)]


def test_missing_app_file_is_a_clear_error(tmp_path):
    with pytest.raises(AppLoadError, match=r"does not exist"):
        import_app_module("function_app.py", tmp_path)


def test_module_without_function_app_is_rejected(tmp_path):
    (tmp_path / "not_an_app.py").write_text("x = 1\n")
    module = import_app_module("not_an_app.py", tmp_path)
    with pytest.raises(AppLoadError, match=r"FunctionApp"):
        find_function_app(module)


def test_import_errors_are_wrapped_with_the_cause(tmp_path):
    (tmp_path / "broken_app.py").write_text("import does_not_exist_anywhere\n")
    with pytest.raises(AppLoadError, match=r"ModuleNotFoundError"):
        import_app_module("broken_app.py", tmp_path)


def test_apps_directory_exists():
    assert (APPS / "blob_app.py").exists()
