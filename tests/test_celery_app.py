"""The Celery app: reliable delivery settings, and the broker of the run mode."""

from django.conf import settings

from config.celery import app


def test_tasks_are_acknowledged_late_and_requeued_when_a_worker_dies():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_time_limit > app.conf.task_soft_time_limit > 0


def test_the_beat_schedule_is_the_one_defined_in_settings_and_names_real_tasks():
    app.loader.import_default_modules()
    assert app.conf.beat_schedule == settings.CELERY_BEAT_SCHEDULE
    for entry in app.conf.beat_schedule.values():
        assert entry["task"] in app.tasks


def test_the_broker_is_reachable(redis_url):
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1)
        assert conn.transport.driver_type == "redis"


def test_the_cache_is_redis_when_redis_is_configured(redis_url):
    from django.conf import settings
    from django.core.cache import cache

    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    cache.set("hashcart-test-probe", "ok", timeout=5)
    assert cache.get("hashcart-test-probe") == "ok"
    cache.delete("hashcart-test-probe")
