"""The running application's services, built once from settings (by the server, the CLI or tests)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from outrider.backends.registry import ModelRegistry
from outrider.config import Settings
from outrider.services.accounts import AccountService, Bootstrap
from outrider.services.extraction import ExtractionService
from outrider.services.generation import GenerationService
from outrider.services.history import HistoryService
from outrider.services.rate_limits import RateLimiter
from outrider.services.recording import Recorder
from outrider.storage.db import Database

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    db: Database
    registry: ModelRegistry
    accounts: AccountService
    extraction: ExtractionService
    generation: GenerationService
    history: HistoryService
    rate_limiter: RateLimiter
    executor: ThreadPoolExecutor
    bootstrap: Bootstrap | None = None

    def close(self) -> None:
        self.registry.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.db.dispose()


def configure_torch(settings: Settings) -> None:
    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)


def build_services(settings: Settings) -> Services:
    """Open the database (migrating it), bootstrap the admin account, declare the models."""
    db = Database(settings.resolved_database_url)
    db.migrate()
    accounts = AccountService(db, auth_cache_ttl_s=settings.auth_cache_ttl_s)
    bootstrap = accounts.bootstrap(settings.admin_api_key)
    # Model work runs here, off the event loop; two threads let a load overlap a running pass.
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="outrider-model")
    registry = ModelRegistry(settings, executor)
    registry.register_plugins()
    configure_torch(settings)
    recorder = Recorder(db)
    return Services(
        settings=settings,
        db=db,
        registry=registry,
        accounts=accounts,
        extraction=ExtractionService(settings, registry, recorder),
        generation=GenerationService(settings, registry, recorder),
        history=HistoryService(db),
        rate_limiter=RateLimiter(settings.rate_limits, settings.rate_limit_storage),
        executor=executor,
        bootstrap=bootstrap,
    )
