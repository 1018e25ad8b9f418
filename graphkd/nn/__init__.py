"""Models: GNN teachers, MLP students and graph classifiers."""

from graphkd.nn.graph_classifier import GNN_CLASSES, GraphClassifier
from graphkd.nn.mlp import MLP
from graphkd.nn.teachers import TEACHER_DEFAULTS, TEACHERS, APPNPNet, NodeGNN, build_teacher

__all__ = [
           "GNN_CLASSES",
           "MLP",
           "TEACHERS",
           "TEACHER_DEFAULTS",
           "APPNPNet",
           "GraphClassifier",
           "NodeGNN",
           "build_teacher",
]
