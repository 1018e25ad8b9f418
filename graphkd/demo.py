"""End-to-end demo on the datasets embedded in the package: no network, no data root.

1. checks the compiled library (as ``graphkd info``);
2. summarises MUTAG's graph sizes through ``graphkd.ops.index_to_ptr``, checked
   against PyG's own batch pointers;
3. trains a GraphSAGE teacher (GLNN's: 2 layers, 128 hidden units, Adam lr 0.01,
   weight decay 5e-4) on Cora under the CPF / GLNN protocol (largest connected
   component, split 0: 20 training and 30 validation nodes per class), keeping
   the epoch with the best validation accuracy;
4. distils it into an MLP with GLNN and trains the same MLP on the labels alone,
   both selected on validation accuracy, and reports test accuracies (GLNN's
   paper: SAGE 80.52, MLP 59.58, GLNN 80.54 over 10 splits);
5. times the answer for 10 new nodes: the GNN fetching their 2-hop
   neighbourhood, the MLP reading their features.

Runs under ``torchrun`` as every geokd trainer does (the teacher in DDP); its
checkpoints are atomic and a rerun with the same ``--out`` resumes.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch_geometric.data import Batch

from geokd.checkpoint import CheckpointManager
from geokd.distributed import cleanup, init_distributed, unwrap_model, wrap_model
from geokd.extension import format_info
from geokd.log import get_logger, progress
from geokd.seed import seed_everything
from graphkd import extension_info
from graphkd.datasets import TUDataset
from graphkd.distill.data import load_node_dataset, make_split
from graphkd.distill.glnn import GLNN, PlainMLP
from graphkd.distill.run import measure_latency
from graphkd.distill.student import DistillContext, student_defaults, train_student
from graphkd.distill.teacher import TeacherOutput, teacher_outputs
from graphkd.nn import build_teacher
from graphkd.ops import index_to_ptr

CHECKPOINT_EVERY = 10


def _mutag_summary() -> dict:
    dataset = TUDataset("MUTAG")
    batch = Batch.from_data_list(list(dataset))
    ptr = index_to_ptr(batch.batch, batch.num_graphs)
    if not torch.equal(ptr, batch.ptr):
        raise RuntimeError("index_to_ptr disagrees with PyG's batch pointers on MUTAG")
    sizes = ptr.diff().float()
    return {
        "graphs": batch.num_graphs,
        "nodes": int(batch.num_nodes),
        "mean_nodes_per_graph": round(float(sizes.mean()), 2),
        "classes": int(dataset.num_classes),
    }


def run_demo(
    epochs: int = 200,
    hidden: int = 128,
    seed: int = 0,
    out: str | None = None,
    device: str | None = None,
    as_json: bool = False,
) -> int:
    if epochs < 1 or hidden < 1:
        raise ValueError(f"epochs and hidden must be >= 1, got epochs={epochs}, hidden={hidden}")
    ctx = init_distributed(device)
    log = get_logger("graphkd.demo", ctx, log_dir=out)
    try:
        info = extension_info()
        if ctx.is_main:
            print(format_info(info), flush=True)
        if not info["loaded"]:
            return 1

        mutag = _mutag_summary()
        log.info(
            "MUTAG: %d graphs, %d nodes, %.2f nodes per graph (index_to_ptr agrees with PyG)",
            mutag["graphs"], mutag["nodes"], mutag["mean_nodes_per_graph"],
        )

        seed_everything(seed)
        cpu_data = load_node_dataset("cora")
        split = make_split(cpu_data, "tran", seed)
        data = cpu_data.to(ctx.device)
        train_index, val_index, test_index = (index.to(ctx.device) for index in (split.train, split.val, split.test))
        model = build_teacher("sage", data.num_features, cpu_data.num_classes, hidden_channels=hidden)
        model = wrap_model(model, ctx)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)

        manager = CheckpointManager(out, ctx) if out else None
        start, best = 0, {"val_acc": -1.0, "test_acc": 0.0, "epoch": -1}
        state = manager.resume() if manager else None
        model_name = f"sage-{hidden}"
        if state is not None and state.get("model_name") != model_name:
            raise ValueError(
                f"{manager.last_path} holds a checkpoint of another model ({state.get('model_name', 'an older demo')}, "
                f"not {model_name}); use a new --out or delete it"
            )
        if state is not None:
            unwrap_model(model).load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            start, best = state["epoch"] + 1, state["best"]
            log.info("resumed from %s at epoch %d", manager.last_path, start)

        best_state = None
        started = time.perf_counter()
        bar = progress(range(start, epochs), ctx, desc="SAGE teacher on Cora", unit="epoch")
        for epoch in bar:
            model.train()
            optimizer.zero_grad()
            out_logits = model(data.x, data.edge_index)
            loss = F.cross_entropy(out_logits[train_index], data.y[train_index])
            loss.backward()
            optimizer.step()

            model.eval()
            with torch.no_grad():
                pred = unwrap_model(model)(data.x, data.edge_index).argmax(dim=-1)
            val_acc = float((pred[val_index] == data.y[val_index]).float().mean())
            test_acc = float((pred[test_index] == data.y[test_index]).float().mean())
            improved = val_acc > best["val_acc"]
            if improved:
                best = {"val_acc": val_acc, "test_acc": test_acc, "epoch": epoch}
                best_state = copy.deepcopy(unwrap_model(model).state_dict())
            bar.set_postfix(loss=f"{loss.item():.3f}", val=f"{val_acc:.3f}", best_test=f"{best['test_acc']:.3f}", refresh=False)
            if manager and (improved or (epoch + 1) % CHECKPOINT_EVERY == 0 or epoch + 1 == epochs):
                manager.save(
                    {
                        "epoch": epoch,
                        "model": unwrap_model(model).state_dict(),
                        "model_name": model_name,
                        "optimizer": optimizer.state_dict(),
                        "best": best,
                        "seed": seed,
                    },
                    best=improved,
                )
        teacher_seconds = time.perf_counter() - started
        teacher = unwrap_model(model)
        if best_state is not None:
            teacher.load_state_dict(best_state)
        elif manager is not None and manager.best_path.is_file():
            teacher.load_state_dict(manager.load_best()["model"])
        result = {
            "dataset": "Cora (embedded; largest connected component, CPF split 0)",
            "model": f"GraphSAGE teacher (2 layers, hidden {hidden})",
            "epochs": epochs,
            "best_epoch": best["epoch"],
            "val_acc": round(best["val_acc"], 4),
            "test_acc": round(best["test_acc"], 4),
            "train_seconds": round(teacher_seconds, 2),
            "world_size": ctx.world_size,
            "device": str(ctx.device),
            "mutag": mutag,
        }
        if ctx.is_main:
            # The students are small: rank 0 trains them while the others wait.
            logits, hidden_rows = teacher_outputs(teacher, cpu_data, split, ctx.device)
            output = TeacherOutput(logits, hidden_rows, {"test": best["test_acc"]})
            distill_ctx = DistillContext(cpu_data, split, output, cpu_data.num_classes, ctx.device, seed)
            config = student_defaults("cora")
            config.update({"epochs": max(epochs, 100)})
            students = {}
            for name, method in (("mlp", PlainMLP()), ("glnn", GLNN())):
                seed_everything(seed)
                trained = train_student(method, distill_ctx, dist_ctx=ctx, desc=f"{name} student", **config)
                students[name] = trained
                result[f"{name}_test_acc"] = round(trained.scores["test"], 4)
                result[f"{name}_val_acc"] = round(trained.scores["val"], 4)
            cpu_teacher = teacher.to("cpu")
            teacher_ms = measure_latency(cpu_teacher, cpu_data, num_hops=len(cpu_teacher.convs))
            student_ms = measure_latency(students["glnn"].student, cpu_data)
            result["latency_ms"] = {"teacher_2hop": round(teacher_ms, 4), "mlp": round(student_ms, 4),
                                    "speedup": round(teacher_ms / student_ms, 1)}
            if out:
                target = Path(out) / "result.json"
                target.write_text(json.dumps(result, indent=2) + "\n")
            if as_json:
                print(json.dumps(result, indent=2))
            else:
                print(
                    f"Cora (CPF split {seed}), test accuracy at the best validation epoch:\n"
                    f"  SAGE teacher   {result['test_acc']:.4f}  ({result['train_seconds']} s on {result['device']} "
                    f"x {ctx.world_size})\n"
                    f"  MLP alone      {result['mlp_test_acc']:.4f}\n"
                    f"  MLP from GLNN  {result['glnn_test_acc']:.4f}\n"
                    f"10 new nodes: teacher with 2-hop fetch {teacher_ms:.2f} ms, MLP {student_ms:.3f} ms "
                    f"({result['latency_ms']['speedup']}x faster)"
                )
        ctx.barrier()
        return 0
    finally:
        cleanup(ctx)
