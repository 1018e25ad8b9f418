"""GNN-to-MLP distillation for serving: GLNN, FF-G2M, VQGraph and NOSMOG on one protocol."""
