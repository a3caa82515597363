"""Look inside a trained model: what every LSTM unit's gates and states do
over the steps of a task's sequences (`nplstm inspect`).

    inspection = inspect(task, model, settings, rng)
    inspection.layers[0].arrays["cell"]      # (sequences, steps, units)
    inspection.layers[0].context_units       # the units that carry the context
    write_csv(inspection, "states.csv")      # npLSTM.plots.plot_inspection draws it
"""
import csv
from dataclasses import dataclass

import numpy as np

from .layers.lstm import LSTMTrace


@dataclass
class LayerStates:
    """One LSTM layer over the sequences looked at."""
    name: str              # the layer's name in the model (lstm, lstm_1, ...)
    arrays: dict           # each of LSTMTrace.QUANTITIES -> (sequences, steps, units)
    context_step: int      # the step where the cell state must carry the context
    spread: np.ndarray     # (units,) per unit: max - min of its cell state over
                           # the sequences at context_step (for two: |A - B|)
    context_units: list    # the units of largest spread, largest first


@dataclass
class Inspection:
    task: str
    titles: list           # one per sequence
    step_labels: list      # per sequence: the input symbol of each step of the first layer
    layers: list           # LayerStates, one per LSTM layer, in model order


def inspect(task, model, settings, rng, marked=3):
    """Trace `model` over the task's probe sequences (task.probes), each from
    a reset state, and rank each layer's units by how much their cell state
    differs across the sequences at the task's context step; the `marked`
    largest are the context units. The model's state is reset afterwards."""
    titles, labels, traces = [], [], []
    for probe in task.probes(settings, rng, model.dtype):
        model.reset_states()
        traced = model.trace(probe.X, batch_size=model.batch_size or len(probe.X))
        model.reset_states()
        shown = len(probe.titles)
        traces.append([{q: _sequences(getattr(t, q), probe.samples_are_steps)[:shown]
                        for q in LSTMTrace.QUANTITIES} for t in traced])
        titles += probe.titles
        labels += probe.step_labels
    layers = []
    for k, trace in enumerate(traced):
        arrays = {q: np.concatenate([per_probe[k][q] for per_probe in traces])
                  for q in LSTMTrace.QUANTITIES}
        step = range(arrays["cell"].shape[1])[task.context_step]
        at_step = arrays["cell"][:, step]
        spread = at_step.max(axis=0) - at_step.min(axis=0)
        units = np.argsort(-spread, kind="stable")[:marked].tolist()
        layers.append(LayerStates(trace.layer, arrays, step, spread, units))
    return Inspection(task.name, titles, labels, layers)


def _sequences(array, samples_are_steps):
    """(samples, steps, units) as (sequences, steps, units): when the samples
    are the successive steps of one sequence, they become one sequence."""
    return array.reshape(1, -1, array.shape[2]) if samples_are_steps else array


CSV_COLUMNS = ("sequence", "title", "layer", "step", "input", "unit", "context_unit",
               *LSTMTrace.QUANTITIES)


def write_csv(inspection, path):
    """One row per sequence, layer, step and unit, with CSV_COLUMNS: the
    six quantities of LSTMTrace, the step's input symbol (first layer only:
    a deeper layer's input is the layer below), and whether the unit is one
    of that layer's context units."""
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(CSV_COLUMNS)
        for layer_index, layer in enumerate(inspection.layers):
            context = set(layer.context_units)
            values = np.stack([layer.arrays[q] for q in LSTMTrace.QUANTITIES], axis=-1)
            S, T, H, _ = values.shape
            for s in range(S):
                for t in range(T):
                    symbol = inspection.step_labels[s][t] if layer_index == 0 else ""
                    for unit in range(H):
                        out.writerow([s, inspection.titles[s], layer.name, t, symbol, unit,
                                      int(unit in context),
                                      *(repr(float(v)) for v in values[s, t, unit])])


def describe(inspection):
    """Lines of text: per layer, the context units and their cell state in
    each sequence at the context step."""
    lines = []
    for k, layer in enumerate(inspection.layers):
        where = f"step {layer.context_step} (counting from 0"
        if k == 0:
            inputs = sorted({labels[layer.context_step] for labels in inspection.step_labels})
            where += f"; input {' or '.join(inputs)}"
        lines.append(f"{layer.name}: the units whose cell state differs most across the "
                     f"{len(inspection.titles)} sequences after {where}):")
        for unit in layer.context_units:
            cells = layer.arrays["cell"][:, layer.context_step, unit]
            shown = ", ".join(f"{c:+.3f}" for c in cells)
            lines.append(f"  unit {unit:>3}: cell state {shown} (spread {layer.spread[unit]:.3f})")
    lines.append("sequences: " + "; ".join(inspection.titles))
    return lines


def summary(model):
    """Keras's table of a built model: each layer's name and type, output
    shape and parameter count, then the totals. The batch dimension shows as
    None unless the batch size is fixed (batch_input_shape)."""
    if not model.built:
        raise ValueError("this model is not built yet: give the first layer input_shape "
                         "or batch_input_shape, or call it on data first")
    rows = [(" Layer (type)", "Output Shape", "Param #")] + [
        (f" {name} ({type(layer).__name__})", str((model.batch_size,) + layer.output_shape),
         str(sum(p.size for p in layer.params)))
        for name, layer in zip(model.layer_names, model.layers)]
    widths = [max(len(r[k]) for r in rows) + 4 for k in range(3)]
    width = sum(widths)
    lines = [f"{cells[0]:<{widths[0]}}{cells[1]:<{widths[1]}}{cells[2]}" for cells in rows]
    total = model.parameters.size
    return "\n".join(['Model: "sequential"', "_" * width, lines[0], "=" * width, *lines[1:],
                      "=" * width, f"Total params: {total:,}", f"Trainable params: {total:,}",
                      "Non-trainable params: 0", "_" * width])
