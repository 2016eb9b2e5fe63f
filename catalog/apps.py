from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalogue"

    def ready(self) -> None:
        from catalog.sqlite_triggers import triggers_ensure

        # Sent once every migration of the run is applied, so whatever rebuilt our tables is done.
        post_migrate.connect(triggers_ensure, sender=self, dispatch_uid="catalog.sqlite_triggers")
