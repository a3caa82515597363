"""Pictures of training and of the inside of an LSTM (matplotlib, an optional
extra: pip install "npLSTM[plot]").

    plot_history(results, "curves.png")        # loss and accuracy per epoch
    plot_inspection(inspection, "gates.png")   # gates and states as heat maps

Both return the matplotlib Figure, and save it when given a path. They use
matplotlib's object interface, without pyplot, so they change no global
backend or state of a notebook they are called from.
"""
import numpy as np

INSTALL_HINT = ('plotting needs matplotlib, an optional extra of npLSTM: '
                'pip install "npLSTM[plot]" (or pip install matplotlib)')

# How each quantity is drawn: title, colour map and value range (None: symmetric
# around 0 over the data, since the cell state is not bounded).
STYLE = {
    "input_gate": ("input gate i", "viridis", (0.0, 1.0)),
    "forget_gate": ("forget gate f", "viridis", (0.0, 1.0)),
    "candidate": ("candidate g", "RdBu_r", (-1.0, 1.0)),
    "output_gate": ("output gate o", "viridis", (0.0, 1.0)),
    "cell": ("cell state c", "RdBu_r", None),
    "hidden": ("hidden state h", "RdBu_r", (-1.0, 1.0)),
}


def require_matplotlib():
    """matplotlib's Figure class, or an ImportError saying how to install it."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return Figure


def plot_history(results, path=None):
    """Training loss (log scale) and training accuracy per epoch of each
    result (npLSTM.tasks Result), one row per result."""
    Figure = require_matplotlib()
    fig = Figure(figsize=(11, 3.2 * len(results)), layout="constrained")
    axes = fig.subplots(len(results), 2, squeeze=False)
    for (loss_ax, acc_ax), r in zip(axes, results):
        epochs = np.arange(1, len(r.history["loss"]) + 1)
        name = f"{r.task} [{r.config}], seed {r.seed}"
        loss_ax.plot(epochs, r.history["loss"], color="tab:blue")
        loss_ax.set(yscale="log", xlabel="epoch", ylabel="training loss (log scale)",
                    title=f"{name}\ntraining loss per epoch")
        acc_ax.plot(epochs, r.history["accuracy"], color="tab:green")
        acc_ax.set(ylim=(-0.02, 1.02), xlabel="epoch", ylabel="training accuracy",
                   title=f"{name}\ntraining accuracy per epoch "
                         f"(evaluation after training: {r.accuracy:.1%})")
        for ax in (loss_ax, acc_ax):
            ax.grid(alpha=0.3)
            ax.title.set_fontsize(10)
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


def plot_inspection(inspection, path=None):
    """Heat maps of each LSTM layer's gates, candidate, cell and hidden state:
    units (rows) over steps (columns), one column of panels per sequence, one
    row per quantity. The context units are marked by triangles on the left
    and listed in the axis label; the context step is outlined in the cell
    panels."""
    Figure = require_matplotlib()
    from matplotlib.patches import Rectangle
    quantities = list(STYLE)
    n_rows = len(quantities) * len(inspection.layers)
    n_cols = len(inspection.titles)
    fig = Figure(figsize=(2.2 + 3.2 * n_cols, 1.9 * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    fig.suptitle(f"{inspection.task}: what each LSTM unit does at each step\n"
                 "\u25b6 marks the context units: those whose cell state differs most "
                 "between the sequences at the outlined step", fontsize=11)
    for k, layer in enumerate(inspection.layers):
        for q, quantity in enumerate(quantities):
            row = axes[k * len(quantities) + q]
            title, cmap, limits = STYLE[quantity]
            values = layer.arrays[quantity]
            if limits is None:
                bound = float(np.abs(values).max()) or 1.0
                limits = (-bound, bound)
            for s, ax in enumerate(row):
                image = ax.imshow(values[s].T, aspect="auto", cmap=cmap, vmin=limits[0],
                                  vmax=limits[1], interpolation="nearest")
                steps = values.shape[1]
                labels = inspection.step_labels[s] if k == 0 else \
                    [str(t + 1) for t in range(steps)]
                shown = range(0, steps, -(-steps // 20))     # at most 20 labels
                ax.set_xticks(shown, [labels[t] for t in shown])
                if q == len(quantities) - 1:
                    ax.set_xlabel("input at each step" if k == 0 else "step")
                context = ", ".join(map(str, layer.context_units))
                ax.set_ylabel(f"{layer.name} units 0-{values.shape[2] - 1}\n"
                              f"\u25b6 context: {context}", fontsize=8)
                heading = f"{layer.name}: {title}"
                ax.set_title(f"{inspection.titles[s]}\n{heading}" if q == 0 and k == 0
                             else heading, fontsize=9)
                ax.set_yticks(layer.context_units, ["\u25b6"] * len(layer.context_units),
                              color="crimson", fontsize=8)
                if quantity == "cell":
                    ax.add_patch(Rectangle((layer.context_step - 0.5, -0.5), 1,
                                           values.shape[2], fill=False, edgecolor="black",
                                           linewidth=1.5))
            fig.colorbar(image, ax=list(row), shrink=0.9, label=title)
    if path is not None:
        fig.savefig(path, dpi=90)
    return fig
