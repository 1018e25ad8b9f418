"""Models: GNN teachers and graph classifiers."""

from graphkd.nn.graph_classifier import GNN_CLASSES, GraphClassifier

__all__ = ["GNN_CLASSES", "GraphClassifier"]
