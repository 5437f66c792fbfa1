"""The running application's services, built once from settings (by the server, the CLI or tests)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from outrider.backends.devices import configure_device
from outrider.backends.registry import ModelRegistry
from outrider.backends.upstream import UpstreamProviders
from outrider.config import Settings, prepare_data_dir
from outrider.jobs.evaluation import EvaluationJobDeps
from outrider.jobs.evaluation import register as register_evaluation_job
from outrider.jobs.generation import GenerationJobDeps
from outrider.jobs.generation import register as register_generation_job
from outrider.jobs.judging import JudgeQueueDeps
from outrider.jobs.judging import register as register_judge_queue
from outrider.jobs.training import TrainingJobDeps
from outrider.jobs.training import register as register_training_job
from outrider.observability.metrics import Metrics
from outrider.services.accounts import AccountService, Bootstrap
from outrider.services.billing import BillingService, usd_to_micro
from outrider.services.broadcast import Broadcast, broadcast_for
from outrider.services.catalog import ModelCatalog
from outrider.services.data_generation import DataGenerationService
from outrider.services.datasets import DatasetService
from outrider.services.deployments import DeploymentService
from outrider.services.embeddings import EmbeddingService
from outrider.services.evaluations import EvaluationService
from outrider.services.extraction import ExtractionService
from outrider.services.feedback_data import FeedbackDataService
from outrider.services.generation import GenerationService
from outrider.services.history import HistoryService
from outrider.services.jobs import JobService
from outrider.services.judge_configs import JudgeConfigService, SamplingCache
from outrider.services.judging import JudgeService
from outrider.services.labeling import LabelingService
from outrider.services.monitoring import MonitoringService
from outrider.services.overview import OverviewService
from outrider.services.rate_limits import RateLimiter
from outrider.services.recording import Recorder
from outrider.services.retraining import RetrainService
from outrider.services.routing import RoutingService
from outrider.services.sessions import SessionService
from outrider.services.training import JOB_PREFIX as TRAINING_JOB_PREFIX
from outrider.services.training import TRAINING_JOB_KIND, TrainingService
from outrider.services.users import UserService
from outrider.storage.db import Database

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    db: Database
    registry: ModelRegistry
    catalog: ModelCatalog
    accounts: AccountService
    users: UserService
    sessions: SessionService
    extraction: ExtractionService
    embeddings: EmbeddingService
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
    upstreams: UpstreamProviders
    routing: RoutingService
    deployments: DeploymentService
    feedback_data: FeedbackDataService
    evaluations: EvaluationService
    judging: JudgeService
    judge_configs: JudgeConfigService
    retraining: RetrainService
    metrics: Metrics  # this app's Prometheus registry, fed by the services above
    monitoring: MonitoringService  # /metrics and /health/ready
    overview: OverviewService
    broadcast: Broadcast  # changes every API process applies (Redis pub/sub with OUTRIDER_REDIS_URL)
    bootstrap: Bootstrap | None = None

    async def aclose(self) -> None:
        """Close the broadcast listener and the upstream providers' HTTP clients (async), then everything else."""
        await self.broadcast.stop()
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
    configure_device(settings.device)  # OUTRIDER_DEVICE=cuda without a GPU is refused here, at start-up
    db = Database.from_settings(settings)
    db.migrate()
    broadcast = broadcast_for(settings.redis_url)  # nothing is contacted until start() (the server's lifespan)
    accounts = AccountService(
        db,
        auth_cache_ttl_s=settings.auth_cache_ttl_s,
        initial_credit_micro_usd=usd_to_micro(settings.initial_credits_usd),
        broadcast=broadcast,
    )
    bootstrap = accounts.bootstrap(settings.admin_api_key, settings.admin_password)
    # Model work runs here, off the event loop; two threads let a load overlap a running pass.
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="outrider-model")
    metrics = Metrics()  # one registry per app: several apps may live in one process
    registry = ModelRegistry(settings, executor, batch_observer=metrics.observe_batch)
    registry.register_plugins()
    upstreams = UpstreamProviders.from_settings(settings)  # clients only; nothing is contacted here
    upstreams.register_models(registry)
    if broadcast.shared:
        upstreams.share_breakers(broadcast)
    configure_torch(settings)
    billing = BillingService(db)
    rate_limiter = RateLimiter(settings.rate_limits, settings.rate_limit_storage)
    sampling = SamplingCache(broadcast, settings.auth_cache_ttl_s)
    recorder = Recorder(db, token_meter=rate_limiter.meter_tokens, observer=metrics.observe_call, sampling=sampling)
    # Which model an id names for a caller: declared models, saved folders, training jobs and checkpoints.
    catalog = ModelCatalog(settings, db, registry, job_kind=TRAINING_JOB_KIND, job_prefix=TRAINING_JOB_PREFIX)
    extraction = ExtractionService(settings, catalog, recorder, billing)
    datasets = DatasetService(db, settings)
    jobs = JobService(db)
    training = TrainingService(settings, db, jobs, datasets, registry, on_deleted=catalog.forget)
    routing = RoutingService(
        settings, catalog, db, on_decision=lambda d: metrics.observe_routing(d.task, d.model, d.mode)
    )
    generation = GenerationService(settings, catalog, recorder, billing, routing)
    history = HistoryService(db, on_routed_verdict=routing.observe_verdict)  # routing learns fit from feedback
    # Each job kind gets what its handler uses, not the whole container.
    register_generation_job(
        jobs.handlers, GenerationJobDeps(accounts=accounts, datasets=datasets, generation=generation)
    )
    register_training_job(jobs.handlers, TrainingJobDeps(settings=settings, training=training, billing=billing))
    register_evaluation_job(jobs.handlers, EvaluationJobDeps(catalog=catalog, datasets=datasets))
    judging = JudgeService(db, catalog, generation, history)
    register_judge_queue(jobs.handlers, JudgeQueueDeps(settings=settings, db=db, judging=judging))
    deployments = DeploymentService(db, catalog)
    feedback_data = FeedbackDataService(db, datasets)
    evaluations = EvaluationService(catalog, datasets, jobs)
    retraining = RetrainService(db, deployments, feedback_data, datasets, training, evaluations, jobs)
    jobs.handlers.every("retrain-policies", settings.retrain_check_interval_s, retraining.tick)
    return Services(
        settings=settings,
        db=db,
        registry=registry,
        catalog=catalog,
        accounts=accounts,
        users=UserService(db, on_user_changed=accounts.forget_user),
        sessions=SessionService(db, settings, rate_limiter.windows),
        extraction=extraction,
        embeddings=EmbeddingService(settings, catalog, recorder, billing),
        generation=generation,
        history=history,
        rate_limiter=rate_limiter,
        billing=billing,
        datasets=datasets,
        jobs=jobs,
        data_generation=DataGenerationService(settings, catalog, jobs, datasets),
        labeling=LabelingService(settings, extraction, datasets),
        training=training,
        executor=executor,
        bootstrap=bootstrap,
        upstreams=upstreams,
        routing=routing,
        deployments=deployments,
        feedback_data=feedback_data,
        evaluations=evaluations,
        retraining=retraining,
        judging=judging,
        judge_configs=JudgeConfigService(db, catalog, sampling),
        metrics=metrics,
        monitoring=MonitoringService(settings, metrics, db, registry, jobs),
        overview=OverviewService(db, billing),
        broadcast=broadcast,
    )
