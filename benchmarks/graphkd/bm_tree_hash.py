"""tree_hash against networkx's Weisfeiler-Lehman subgraph hashes and a Python unrolling canonicalizer.

Every graph of each dataset in one call (a PyG batch); node and edge labels from
`graphkd.condense.discretize` (argmax of TU's one-hot labels; one category per distinct row of the
molecules' OGB atom and bond features, bonds then label the tree edges); depth L = 1..4. Before timing, the partition of the nodes at every depth is asserted equal to
networkx's (and to the unrolled AHU strings' where that peer runs). Data: $GEOKD_DATA (offline copies).

    GEOKD_DATA=../shared/data GEOKD_OFFLINE=1 python benchmarks/graphkd/bm_tree_hash.py \\
        [--datasets NCI1 DD mol-hiv] [--sizes 1 2 3 4] [--unroll NCI1] [--json out.json]
"""

from __future__ import annotations

import sys

import networkx as nx
import torch
from torch_geometric.data import Batch

from geokd.benchmark import benchmark_parser, machine, measure, write_json
from graphkd.condense.discretize import discretize
from graphkd.datasets import get_dataset
from graphkd.ops import tree_hash
from graphkd.ops.tree_hash import _tree_hash_reference, same_partition


def to_networkx_graphs(batch: Batch, node_labels: torch.Tensor, edge_labels: torch.Tensor | None) -> list[nx.Graph]:
    """One undirected networkx graph per PyG graph, with zero-padded labels (networkx joins labels
    without separators, so variable-width labels would be ambiguous)."""
    graphs = []
    edge_index, ptr = batch.edge_index, batch.ptr.tolist()
    edge_graph = batch.batch[edge_index[0]].tolist()
    labels = node_labels.tolist()
    width = len(str(max(labels, default=0)))
    bonds = edge_labels.tolist() if edge_labels is not None else [0] * edge_index.shape[1]
    graph_edges: list[list[tuple[int, int, dict]]] = [[] for _ in range(batch.num_graphs)]
    for (u, v), bond, graph_index in zip(edge_index.t().tolist(), bonds, edge_graph):
        start = ptr[graph_index]
        graph_edges[graph_index].append((u - start, v - start, {"label": f"{bond:03d}"}))
    for graph_index in range(batch.num_graphs):
        start, end = ptr[graph_index], ptr[graph_index + 1]
        graph = nx.Graph()
        graph.add_nodes_from((v - start, {"label": f"{labels[v]:0{width}d}"}) for v in range(start, end))
        graph.add_edges_from(graph_edges[graph_index])
        graphs.append(graph)
    return graphs


def networkx_hashes(graphs: list[nx.Graph], num_hops: int, edge_attr: str | None) -> list[list[str]]:
    per_depth: list[list[str]] = [[] for _ in range(num_hops + 1)]
    for graph in graphs:
        hashes = nx.weisfeiler_lehman_subgraph_hashes(
            graph, node_attr="label", edge_attr=edge_attr, iterations=num_hops, include_initial_labels=True
        )
        for depth in range(num_hops + 1):
            per_depth[depth].extend(hashes[v][depth] for v in range(graph.number_of_nodes()))
    return per_depth


def main() -> None:
    parser = benchmark_parser(__doc__, [1, 2, 3, 4], "depths L", repeat=5)
    parser.add_argument("--datasets", nargs="+", default=["NCI1", "DD", "mol-hiv"],
                        help="datasets (default: NCI1 DD mol-hiv; molecules hash with bond labels)")
    parser.add_argument("--unroll", nargs="*", default=["NCI1"], help="datasets also timed with the unrolling peer")
    args = parser.parse_args()
    device = torch.device(args.device)

    rows = []
    for name in args.datasets:
        batch = Batch.from_data_list(list(get_dataset(name)))
        edge_index = batch.edge_index
        node_labels = discretize(batch.x, edge_index, int(batch.num_nodes))
        edge_attr = getattr(batch, "edge_attr", None)
        edge_labels = discretize(edge_attr, edge_index, int(batch.num_nodes), what="edges") \
            if edge_attr is not None else None
        graphs = to_networkx_graphs(batch, node_labels, edge_labels)
        nx_edge_attr = "label" if edge_labels is not None else None
        print(f"{name}: {batch.num_graphs} graphs, {batch.num_nodes:,} nodes, {edge_index.shape[1]:,} directed edges",
              file=sys.stderr)
        for num_hops in args.sizes:
            on_device = (edge_index.to(device), node_labels.to(device), num_hops,
                         edge_labels.to(device) if edge_labels is not None else None)
            ids = tree_hash(*on_device).cpu()
            expected = networkx_hashes(graphs, num_hops, nx_edge_attr)
            for depth in range(num_hops + 1):
                assert same_partition(ids[depth].tolist(), expected[depth]), f"{name} L={num_hops} depth {depth}"
            row = {
                "dataset": name,
                "num_hops": num_hops,
                "nodes": int(batch.num_nodes),
                "edges": int(edge_index.shape[1]),
                "distinct_trees": [int(ids[d].max()) + 1 for d in range(num_hops + 1)],
                "geokd": measure(lambda inputs=on_device: tree_hash(*inputs), device, repeat=args.repeat),
                "networkx": measure(lambda g=graphs, n=num_hops, e=nx_edge_attr: networkx_hashes(g, n, e), torch.device("cpu"), warmup=0,
                                    repeat=max(1, args.repeat // 2)),
            }
            row["speedup_vs_networkx"] = row["networkx"]["median_ms"] / row["geokd"]["median_ms"]
            if name in args.unroll:
                assert torch.equal(ids, _tree_hash_reference(edge_index, node_labels, num_hops, edge_labels))
                row["unrolling"] = measure(lambda a=(edge_index, node_labels, num_hops, edge_labels): _tree_hash_reference(*a),
                                           torch.device("cpu"), warmup=0, repeat=max(1, args.repeat // 2))
                row["speedup_vs_unrolling"] = row["unrolling"]["median_ms"] / row["geokd"]["median_ms"]
            rows.append(row)
            print(
                f"  L={num_hops}: geokd {row['geokd']['median_ms']:8.1f} ms   networkx {row['networkx']['median_ms']:8.1f} ms"
                + (f"   unrolling {row['unrolling']['median_ms']:8.1f} ms" if "unrolling" in row else ""),
                file=sys.stderr,
            )
    write_json(args.json, {"benchmark": "tree_hash", "device": str(device), "machine": machine(), "rows": rows})
    for row in rows:
        if row["num_hops"] == 3:
            print(f"ratio {row['dataset']} L=3: {row['speedup_vs_networkx']:.1f}x networkx"
                  + (f", {row['speedup_vs_unrolling']:.1f}x unrolling" if "unrolling" in row else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
