"""A script-mode training job that saves its own tensors with smdebug's framework-agnostic
writer, into whatever Debugger output the job was given.

rustmaker writes the job's DebugHookConfig where smdebug looks for it in a SageMaker
container (the file SMDEBUG_CONFIG_FILE_PATH names, `LocalPath` its output directory), so
the same script runs unchanged on SageMaker. The rules configured for the job read each step
as it appears. Hyperparameters: --epochs N, --stall 1 (the loss stops falling after 5 epochs),
--hang S (after epoch 2 the program hangs for S seconds, saving nothing).
"""

import argparse
import os
import time

import numpy as np
from smdebug.core.json_config import get_json_config_as_dict
from smdebug.core.modes import ModeKeys
from smdebug.core.writer import FileWriter

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=20)
parser.add_argument("--stall", type=int, default=0)
parser.add_argument("--hang", type=float, default=0)
args = parser.parse_args()

config = get_json_config_as_dict(None)
out_dir = config["LocalPath"]
weights = np.zeros(4)
for epoch in range(args.epochs):
    loss = 1.0 / (1 + epoch) if not (args.stall and epoch >= 5) else 1.0 / 6
    weights += 0.1
    with FileWriter(trial_dir=out_dir, step=epoch, worker="worker_0") as writer:
        writer.write_tensor(tdata=np.array(loss), tname="loss", mode=ModeKeys.TRAIN, mode_step=epoch)
        writer.write_tensor(tdata=weights, tname="dense.weight", mode=ModeKeys.TRAIN, mode_step=epoch)
    print(f"epoch {epoch}: loss={loss:.4f}", flush=True)
    time.sleep(args.hang if args.hang and epoch == 2 else 0.3)

with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w") as f:
    f.write(" ".join(str(w) for w in weights))
