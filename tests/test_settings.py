"""Run modes (DESIGN §9): embedded defaults with no environment, real services with URLs, and
production settings that refuse to start without their secrets and pass ``check --deploy``."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "SECRET_KEY": "prod-" + "k3y-Of-SuFFicient-LeNgth-and-variety-" * 2,
    "DATABASE_URL": "postgres://hashcart@db.internal:5432/hashcart",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "ALLOWED_HOSTS": "shop.example.com",
    "HASHCART_SITE_URL": "https://shop.example.com",
    # Two keys: the first encrypts, both decrypt (rotation).
    "HASHCART_CREDENTIALS_KEY": "Z8Z9kQh0mCw3wRkq3c2oS2m0o2cT7yq7QK2o3g0jY1U=,"
    "3YqCw8v2Wc7bQj2o3E8v5q0oA1bC2dE3fG4hI5jK6lM=",
}
_PROBE = (
    "import json, django; django.setup(); from django.conf import settings as s;"
    "db = s.DATABASES['default'];"
    "print(json.dumps({'engine': db['ENGINE'], 'name': str(db['NAME']),"
    " 'options': db.get('OPTIONS', {}), 'broker': s.CELERY_BROKER_URL,"
    " 'broker_options': s.CELERY_BROKER_TRANSPORT_OPTIONS,"
    " 'cache': s.CACHES['default']['BACKEND'], 'debug': s.DEBUG}))"
)


def _run(args, env_extra, tmp_path, settings_module):
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "DATABASE_URL",
            "REDIS_URL",
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "DJANGO_SETTINGS_MODULE",
            "REQUIRE_SERVICES",
            "HASHCART_SITE_URL",
            "HASHCART_CREDENTIALS_KEY",
        }
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": settings_module,
            "HASHCART_VAR_DIR": str(tmp_path / "var"),
            **env_extra,
        }
    )
    return subprocess.run(  # noqa: S603
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _probe(tmp_path, env_extra, settings_module="config.settings.local"):
    result = _run(["-c", _PROBE], env_extra, tmp_path, settings_module)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_with_no_environment_it_runs_on_sqlite_and_a_filesystem_broker_under_var(tmp_path):
    found = _probe(tmp_path, {})
    assert found["engine"] == "django.db.backends.sqlite3"
    assert found["name"] == str(tmp_path / "var" / "hashcart.sqlite3")
    # Several processes share the file: WAL, immediate transactions and a busy timeout.
    assert found["options"]["transaction_mode"] == "IMMEDIATE"
    assert found["options"]["timeout"] >= 5
    assert "journal_mode=WAL" in found["options"]["init_command"]
    assert found["broker"] == "filesystem://"
    assert found["broker_options"]["data_folder_in"].startswith(str(tmp_path / "var"))
    assert (tmp_path / "var" / "celery" / "queue").is_dir()
    assert found["debug"] is True


def test_with_urls_it_runs_on_postgresql_and_redis(tmp_path):
    found = _probe(
        tmp_path,
        {
            "DATABASE_URL": "postgres://u@127.0.0.1:5432/hashcart",
            "REDIS_URL": "redis://127.0.0.1:6379/3",
        },
    )
    assert found["engine"] == "django.db.backends.postgresql"
    assert found["name"] == "hashcart"
    assert found["broker"] == "redis://127.0.0.1:6379/3"
    assert found["cache"] == "django.core.cache.backends.redis.RedisCache"


@pytest.mark.parametrize("missing", sorted(PRODUCTION_ENV))
def test_production_refuses_to_start_without_each_secret(tmp_path, missing):
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != missing}
    result = _run(["-c", _PROBE], env, tmp_path, "config.settings.production")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert missing in result.stderr


def test_production_passes_the_deployment_checks(tmp_path):
    result = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        PRODUCTION_ENV,
        tmp_path,
        "config.settings.production",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_never_runs_in_debug(tmp_path):
    found = _probe(
        tmp_path,
        {**PRODUCTION_ENV, "DJANGO_DEBUG": "1"},
        settings_module="config.settings.production",
    )
    assert found["debug"] is False


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HASHCART_SITE_URL", "http://shop.example.com"),
        ("HASHCART_SITE_URL", "shop.example.com"),
        ("HASHCART_SITE_URL", "https://"),
        ("HASHCART_CREDENTIALS_KEY", PRODUCTION_ENV["SECRET_KEY"]),
        ("HASHCART_CREDENTIALS_KEY", "not-a-fernet-key"),
        ("HASHCART_CREDENTIALS_KEY", ""),
    ],
)
def test_production_refuses_a_plain_site_url_or_a_credentials_key_that_is_no_key(
    tmp_path, variable, value
):
    result = _run(
        ["-c", _PROBE], {**PRODUCTION_ENV, variable: value}, tmp_path, "config.settings.production"
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr


def test_production_links_point_at_the_site_url_and_credentials_use_every_key(tmp_path):
    probe = (
        "import json, django; django.setup(); from django.conf import settings as s;"
        "print(json.dumps({'site': s.HASHCART['SITE_URL'], 'keys': s.CREDENTIALS_KEYS}))"
    )
    result = _run(["-c", probe], PRODUCTION_ENV, tmp_path, "config.settings.production")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["site"] == "https://shop.example.com"
    assert found["keys"] == PRODUCTION_ENV["HASHCART_CREDENTIALS_KEY"].split(",")


def test_the_environment_has_one_reader():
    """Settings are read from the environment in one place, ``config.settings.base.env``
    (which also reads ``.env``); code elsewhere reads ``django.conf.settings``. Passing the
    environment on to a child process, or naming the settings module, is not a read."""
    reads = re.compile(r"environ\.Env\(|os\.environ\.get\(|os\.environ\[|os\.getenv\(")
    found = []
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in {".venv", "var", "tests"} or "tests" in relative.parts[:-1]:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if reads.search(line):
                found.append(f"{relative}:{number}: {line.strip()}")
    assert found == ["config/settings/base.py:17: env = environ.Env()"]


def test_the_filesystem_broker_keeps_its_control_files_under_var(tmp_path):
    found = _probe(tmp_path, {})
    assert found["broker_options"]["control_folder"] == str(tmp_path / "var" / "celery" / "control")
    assert (tmp_path / "var" / "celery" / "control").is_dir()
    assert not (ROOT / "control").exists()


def test_production_honours_the_visibility_timeout(tmp_path):
    found = _probe(
        tmp_path,
        {**PRODUCTION_ENV, "CELERY_VISIBILITY_TIMEOUT": "7200"},
        settings_module="config.settings.production",
    )
    assert found["broker_options"]["visibility_timeout"] == 7200


# --- Production runs without the fake world (issue 11, item 5) ---------------------------------
_PRODUCTION_PROBE = """
import importlib, json, pkgutil, sys
import django
django.setup()
from django.apps import apps
from django.conf import settings
from django.core.management import get_commands
from django.urls import NoReverseMatch, Resolver404, resolve, reverse
from django.utils.module_loading import import_string

chosen = [
    *settings.HASHCART["PLATFORM_ADAPTERS"].values(),
    *settings.HASHCART["CARRIERS"].values(),
    settings.HASHCART["PAYMENT_GATEWAY"],
    settings.HASHCART["CARD_VAULT"],
]
for path in chosen:
    import_string(path)
# Every module of the domain apps loads with the fake world left out: none imports it.
fake = {"sandbox", "devtools"}
modules = 0
for package in ["core", "social", "accounts", "catalog", "orders", "fulfillment"]:
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if ".tests" not in info.name:
            importlib.import_module(info.name)
            modules += 1
try:
    resolve("/sandbox/")
    sandbox_url = True
except Resolver404:
    sandbox_url = False
try:
    reverse("sandbox:home")
    sandbox_name = True
except NoReverseMatch:
    sandbox_name = False
print(json.dumps({
    "apps": [config.name for config in apps.get_app_configs()],
    "chosen": chosen,
    "modules": modules,
    "fake_loaded": sorted(name for name in sys.modules if name.split(".")[0] in fake),
    "sandbox_url": sandbox_url,
    "sandbox_name": sandbox_name,
    "urls": {name: reverse(name) for name in ["healthz", "admin:index", "accounts:link"]},
    "admin": resolve("/admin/").url_name,
    "commands": sorted(get_commands()),
}))
"""


def test_production_starts_without_the_sandbox_and_devtools(tmp_path):
    result = _run(["-c", _PRODUCTION_PROBE], PRODUCTION_ENV, tmp_path, "config.settings.production")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert "sandbox" not in found["apps"]
    assert "devtools" not in found["apps"]
    assert {"core", "social", "accounts", "catalog", "orders", "fulfillment"} <= set(found["apps"])
    # Real implementations only, and each of them loads.
    assert found["chosen"]
    assert not [path for path in found["chosen"] if path.split(".")[0] in {"sandbox", "devtools"}]
    assert found["modules"] > 50
    assert found["fake_loaded"] == []
    # The URLs resolve, with no sandbox routes among them.
    assert found["sandbox_url"] is False
    assert found["sandbox_name"] is False
    assert found["urls"] == {
        "healthz": "/healthz",
        "admin:index": "/admin/",
        "accounts:link": "/link/",
    }
    assert found["admin"] == "index"
    # Neither the sandbox's commands nor the tools are there.
    for command in ["sandbox_post", "sandbox_timeline", "seed_demo", "run_demo", "bench_parse"]:
        assert command not in found["commands"]
    assert not [command for command in found["commands"] if command.startswith("bench_")]
    assert "check" in found["commands"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HASHCART_PAYMENT_GATEWAY", "sandbox.gateway.SandboxGateway"),
        ("HASHCART_CARD_VAULT", "sandbox"),
        ("HASHCART_CARD_VAULT", "sandbox.vault.SandboxVault"),
        ("HASHCART_CARRIER", "sandbox"),
        ("HASHCART_DEFAULT_PLATFORM", "sandbox"),
    ],
)
def test_production_refuses_a_setting_that_names_the_sandbox(tmp_path, variable, value):
    result = _run(
        ["-c", _PROBE], {**PRODUCTION_ENV, variable: value}, tmp_path, "config.settings.production"
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr


@pytest.mark.parametrize("settings_module", ["config.settings.local", "config.settings.test"])
def test_development_and_tests_keep_the_sandbox_and_devtools(tmp_path, settings_module):
    probe = (
        "import json, django; django.setup(); from django.conf import settings as s;"
        "from django.urls import resolve, reverse;"
        "print(json.dumps({'apps': s.INSTALLED_APPS, 'page': reverse('sandbox:home'),"
        " 'view': resolve('/sandbox/').view_name, 'gateway': s.HASHCART['PAYMENT_GATEWAY'],"
        " 'vault': s.HASHCART['CARD_VAULT']}))"
    )
    result = _run(["-c", probe], {}, tmp_path, settings_module)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert {"sandbox", "devtools"} <= set(found["apps"])
    assert found["page"] == "/sandbox/"
    assert found["view"] == "sandbox:home"
    assert found["gateway"] == "sandbox.gateway.SandboxGateway"
    assert found["vault"] == "sandbox.vault.SandboxVault"


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("sandbox", "sandbox.vault.SandboxVault"),
        ("stripe", "accounts.stripe_vault.StripeVault"),
        ("accounts.stripe_vault.StripeVault", "accounts.stripe_vault.StripeVault"),
    ],
)
def test_the_card_vault_is_named_or_given_by_dotted_path(tmp_path, value, path):
    probe = (
        "import django; django.setup(); from django.conf import settings as s;"
        "print(s.HASHCART['CARD_VAULT'])"
    )
    result = _run(["-c", probe], {"HASHCART_CARD_VAULT": value}, tmp_path, "config.settings.local")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == path
