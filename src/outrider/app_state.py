"""The running application's services, built once from settings (by the server, the CLI or tests)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from outrider.backends.registry import ModelRegistry
from outrider.backends.upstream import UpstreamProviders
from outrider.config import Settings, prepare_data_dir
from outrider.jobs.generation import register as register_generation_job
from outrider.jobs.training import register as register_training_job
from outrider.services.accounts import AccountService, Bootstrap
from outrider.services.billing import BillingService, usd_to_micro
from outrider.services.data_generation import DataGenerationService
from outrider.services.datasets import DatasetService
from outrider.services.extraction import ExtractionService
from outrider.services.generation import GenerationService
from outrider.services.history import HistoryService
from outrider.services.jobs import JobService
from outrider.services.labeling import LabelingService
from outrider.services.rate_limits import RateLimiter
from outrider.services.recording import Recorder
from outrider.services.routing import RoutingService
from outrider.services.training import TrainingService
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
    billing: BillingService
    datasets: DatasetService
    jobs: JobService
    data_generation: DataGenerationService
    labeling: LabelingService
    training: TrainingService
    executor: ThreadPoolExecutor
    bootstrap: Bootstrap | None = None
    upstreams: UpstreamProviders | None = None
    routing: RoutingService | None = None

    async def aclose(self) -> None:
        """Close the upstream providers' HTTP clients (async), then everything else."""
        if self.upstreams is not None:
            await self.upstreams.aclose()
        self.close()

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
    prepare_data_dir(settings.data_dir)  # also for settings built without build_settings
    db = Database(settings.resolved_database_url)
    db.migrate()
    accounts = AccountService(
        db,
        auth_cache_ttl_s=settings.auth_cache_ttl_s,
        initial_credit_micro_usd=usd_to_micro(settings.initial_credits_usd),
    )
    bootstrap = accounts.bootstrap(settings.admin_api_key)
    # Model work runs here, off the event loop; two threads let a load overlap a running pass.
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="outrider-model")
    registry = ModelRegistry(settings, executor)
    registry.register_plugins()
    upstreams = UpstreamProviders.from_settings(settings)  # clients only; nothing is contacted here
    upstreams.register_models(registry)
    configure_torch(settings)
    billing = BillingService(db)
    rate_limiter = RateLimiter(settings.rate_limits, settings.rate_limit_storage)
    recorder = Recorder(db, token_meter=rate_limiter.meter_tokens)
    extraction = ExtractionService(settings, registry, recorder, billing)
    datasets = DatasetService(db, settings)
    jobs = JobService(db)
    register_generation_job(jobs.handlers)
    register_training_job(jobs.handlers)
    training = TrainingService(settings, db, jobs, datasets, registry)
    registry.add_resolver(training.resolve_model)  # training job ids and checkpoint ids are model ids
    generation = GenerationService(settings, registry, recorder, billing)
    routing = RoutingService(settings, registry, db)
    generation.routing = routing  # model "auto": decide, then fall back along the ranking
    history = HistoryService(db)
    history.on_routed_verdict = routing.observe_verdict
    return Services(
        settings=settings,
        db=db,
        registry=registry,
        accounts=accounts,
        extraction=extraction,
        generation=generation,
        history=history,
        rate_limiter=rate_limiter,
        billing=billing,
        datasets=datasets,
        jobs=jobs,
        data_generation=DataGenerationService(settings, registry, jobs, datasets),
        labeling=LabelingService(settings, extraction, datasets),
        training=training,
        executor=executor,
        bootstrap=bootstrap,
        upstreams=upstreams,
        routing=routing,
    )
