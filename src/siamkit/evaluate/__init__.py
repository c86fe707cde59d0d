"""Evaluation as library calls: frozen features, kNN, linear probe, fine-tuning, transfer, t-SNE (a registry),
typed results, and the kNN monitor of pretraining."""

from siamkit.evaluate.api import EvalData, finetune, knn, linear, load_eval_data, record, transfer, tsne
from siamkit.evaluate.encoders import Encoder, load_encoder, load_model, random_encoder, random_folder_name, random_spec
from siamkit.evaluate.features import extract_features
from siamkit.evaluate.knn import knn_accuracy, knn_predict
from siamkit.evaluate.monitor import knn_monitor
from siamkit.evaluate.registry import Evaluation, Option, register_evaluation
from siamkit.evaluate.results import EvalResult, FinetuneResult, KnnResult, LinearResult, TransferResult, TsneResult
from siamkit.registry import EVALUATIONS

__all__ = [
    "EVALUATIONS",
    "Encoder",
    "EvalData",
    "EvalResult",
    "Evaluation",
    "FinetuneResult",
    "KnnResult",
    "LinearResult",
    "Option",
    "TransferResult",
    "TsneResult",
    "extract_features",
    "finetune",
    "knn",
    "knn_accuracy",
    "knn_monitor",
    "knn_predict",
    "linear",
    "load_encoder",
    "load_eval_data",
    "load_model",
    "random_encoder",
    "random_folder_name",
    "random_spec",
    "record",
    "register_evaluation",
    "transfer",
    "tsne",
]
