"""Widgets whose values live in the URL, error display, id lists and number formats for the pages.

Every input widget of a page is made through :class:`Params`: its starting value comes from the
URL query parameter of the same name (``?model=llama-3.1-8b&tp=2``) when that is a valid value,
else from the page's default, and after the widget is drawn its value is written back to the
query parameters, so the browser's URL always reproduces the view. A query parameter that is not
a valid value is reported with a warning and replaced by the default.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import streamlit as st

import genmodel
from genmodel.report import format_bytes, format_seconds

T = TypeVar("T")

#: Precisions a tensor class may be stored in (genmodel.DTYPE_BYTES is the authority).
DTYPES: tuple[str, ...] = tuple(genmodel.DTYPE_BYTES)
#: Precisions the weights may be stored in: the plain ones and the quantised formats with their scales
#: (q4_k_m, q8_0, q4f16_1, ...; genmodel.WEIGHT_DTYPE_BYTES is the authority). Activations and the KV
#: cache take only :data:`DTYPES`.
WEIGHT_DTYPES: tuple[str, ...] = tuple(genmodel.WEIGHT_DTYPE_BYTES)
#: Seconds per millisecond: latency targets are entered in ms, the API takes seconds.
MS = 1e-3

__all__ = [
    "DTYPES",
    "MS",
    "WEIGHT_DTYPES",
    "Params",
    "format_bytes",
    "format_seconds",
    "hardware_ids",
    "model_ids",
    "moe_model_ids",
    "platform_ids",
    "select_hardware",
    "serving_caption",
    "serving_inputs",
    "show_notes",
    "system_ids",
    "tier_ids",
]


@st.cache_data(show_spinner=False)
def model_ids() -> list[str]:
    """Ids of the models in the database."""
    return genmodel.list_ids("model")


@st.cache_data(show_spinner=False)
def moe_model_ids() -> list[str]:
    """Ids of the mixture-of-experts models (those with experts)."""
    return [
        i for i in genmodel.list_ids("model") if genmodel.describe_model(genmodel.load_model(i))["experts"]
    ]


@st.cache_data(show_spinner=False)
def hardware_ids() -> list[str]:
    """Ids of the devices and their power modes."""
    return [*genmodel.list_ids("hardware"), *genmodel.list_ids("power mode")]


@st.cache_data(show_spinner=False)
def system_ids() -> list[str]:
    """Ids of the systems (devices joined by a fabric)."""
    return genmodel.list_ids("system")


def platform_ids() -> list[str]:
    """What ``hardware=`` takes: the devices, their power modes and the systems."""
    return [*hardware_ids(), *system_ids()]


def select_hardware(p: Params, default: str = "h100-sxm") -> str:
    """The page's one device or system (query parameter ``hardware``)."""
    return p.select(
        "Hardware",
        platform_ids(),
        "hardware",
        default,
        help="A device (its usual system: h100-sxm means a DGX H100) or a system id.",
    )


@st.cache_data(show_spinner=False)
def tier_ids() -> list[str]:
    """Ids of the memory tiers an offload may use."""
    return genmodel.list_ids("memory tier")


def _int_list(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _bool(text: str) -> bool | None:
    return {"1": True, "0": False, "true": True, "false": False}.get(text.lower())


def _str_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


class Params:
    """Input widgets of one page, synchronised with the URL query parameters.

    Args:
        page: the page's name; widget keys are ``"{page}.{name}"`` so pages do not share state.
        container: where the widgets go (default: the sidebar).
    """

    def __init__(self, page: str, container: Any = None) -> None:
        self.page = page
        self.container = st.sidebar if container is None else container
        self._published: set[str] = set()

    def finish(self) -> None:
        """Drop the query parameters no widget of this page wrote (left by another page or a typo),
        so the URL holds exactly this view."""
        for name in [n for n in st.query_params if n not in self._published]:
            del st.query_params[name]

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Show a :class:`genmodel.GenModelError` (bad input, a plan that cannot run) as one error
        box and stop the page there, as the CLI prints one red line; the URL keeps the inputs."""
        try:
            yield
        except genmodel.GenModelError as exc:
            self.finish()
            st.error(str(exc))
            st.stop()

    @contextlib.contextmanager
    def into(self, container: Any) -> Iterator[None]:
        """Put the widgets made inside the ``with`` block into ``container`` (``st`` for the main area)."""
        saved, self.container = self.container, container
        try:
            yield
        finally:
            self.container = saved

    def _key(self, name: str) -> str:
        return f"{self.page}.{name}"

    def _seed(self, name: str, default: T, parse: Callable[[str], T], valid: Callable[[T], bool]) -> str:
        """Put the starting value of widget ``name`` into the session state (URL, else default)."""
        key = self._key(name)
        if key not in st.session_state:
            value = default
            raw = st.query_params.get(name)
            if raw is not None:
                try:
                    parsed = parse(raw)
                except ValueError:
                    parsed = None
                if parsed is not None and valid(parsed):
                    value = parsed
                else:
                    st.toast(f"query parameter {name}={raw!r} is not a valid value here; using {default!r}")
            st.session_state[key] = value
        return key

    def _publish(self, name: str, text: str) -> None:
        self._published.add(name)
        if st.query_params.get(name) != text:
            st.query_params[name] = text

    def select(
        self, label: str, options: Sequence[str], name: str, default: str, *, help: str | None = None
    ) -> str:
        """A selectbox of ``options``; the query parameter holds the option itself."""
        key = self._seed(name, default, str, lambda v: v in options)
        value: str = self.container.selectbox(label, list(options), key=key, help=help)
        self._publish(name, value)
        return value

    def radio(self, label: str, options: Sequence[str], name: str, default: str) -> str:
        """Horizontal radio buttons of ``options``."""
        key = self._seed(name, default, str, lambda v: v in options)
        value: str = self.container.radio(label, list(options), key=key, horizontal=True)
        self._publish(name, value)
        return value

    def integer(
        self,
        label: str,
        name: str,
        default: int,
        *,
        min_value: int = 1,
        max_value: int = 10_000_000,
        step: int = 1,
        help: str | None = None,
    ) -> int:
        """A number input for an integer in [min_value, max_value]."""
        key = self._seed(name, default, int, lambda v: min_value <= v <= max_value)
        value = int(
            self.container.number_input(
                label, min_value=min_value, max_value=max_value, step=step, key=key, help=help
            )
        )
        self._publish(name, str(value))
        return value

    def number(
        self,
        label: str,
        name: str,
        default: float,
        *,
        min_value: float,
        max_value: float,
        step: float,
        format: str | None = None,
        help: str | None = None,
    ) -> float:
        """A number input for a float in [min_value, max_value]; the query parameter is the value
        with up to 12 significant digits (``20``, ``0.5``)."""
        key = self._seed(name, float(default), float, lambda v: min_value <= v <= max_value)
        value = float(
            self.container.number_input(
                label,
                min_value=float(min_value),
                max_value=float(max_value),
                step=float(step),
                format=format,
                key=key,
                help=help,
            )
        )
        self._publish(name, f"{value:.12g}")
        return value

    def slider(
        self,
        label: str,
        name: str,
        default: float,
        *,
        min_value: float,
        max_value: float,
        step: float,
        format: str | None = None,
        help: str | None = None,
    ) -> float:
        """A slider for a float in [min_value, max_value]."""
        key = self._seed(name, default, float, lambda v: min_value <= v <= max_value)
        value = float(
            self.container.slider(
                label,
                min_value=min_value,
                max_value=max_value,
                step=step,
                format=format,
                key=key,
                help=help,
            )
        )
        self._publish(name, f"{value:g}")
        return value

    def checkbox(self, label: str, name: str, default: bool, *, help: str | None = None) -> bool:
        """A checkbox; the query parameter is 1 or 0."""
        key = self._seed(name, default, _bool, lambda v: v is not None)
        value = bool(self.container.checkbox(label, key=key, help=help))
        self._publish(name, "1" if value else "0")
        return value

    def multiselect(
        self,
        label: str,
        options: Sequence[str],
        name: str,
        default: Sequence[str],
        *,
        help: str | None = None,
    ) -> list[str]:
        """A multiselect of ``options``; the query parameter is a comma-separated list."""
        key = self._seed(name, list(default), _str_list, lambda v: all(x in options for x in v))
        value: list[str] = list(self.container.multiselect(label, list(options), key=key, help=help))
        self._publish(name, ",".join(value))
        return value

    def int_multiselect(
        self,
        label: str,
        options: Sequence[int],
        name: str,
        default: Sequence[int],
        *,
        help: str | None = None,
    ) -> list[int]:
        """A multiselect of integers, kept sorted; the query parameter is a comma-separated list."""
        key = self._seed(name, list(default), _int_list, lambda v: all(x in options for x in v))
        chosen = self.container.multiselect(
            label, list(options), key=key, format_func=lambda v: f"{v:,}", help=help
        )
        value = sorted(int(v) for v in chosen)
        self._publish(name, ",".join(str(v) for v in value))
        return value


def traffic_inputs(p: Params, *, what: str, budget_label: str, copy_label: str) -> tuple[float | None, int]:
    """The request-rate toggle, the rate, and the devices input (a budget, or the largest copy of a
    plan when planning for a rate); ``what`` names what the rate is planned for."""
    traffic = p.checkbox(
        "Plan for a request rate",
        "traffic",
        False,
        help=f"Traffic instead of a budget: {what}, and the number of its copies, that serve the "
        "request rate within the SLOs on the fewest devices.",
    )
    rate = None
    if traffic:
        rate = p.number(
            "Request rate (requests/s)", "request_rate", 20.0, min_value=0.01, max_value=1e6, step=1.0
        )
    devices = p.integer(copy_label if traffic else budget_label, "devices", 8, max_value=4096)
    return rate, devices


def workload_inputs(p: Params) -> tuple[int, int, int, int]:
    """Input and output tokens per request, and the TTFT and TPOT targets in milliseconds."""
    input_tokens = p.integer("Input tokens per request", "input_tokens", 2000, step=100)
    output_tokens = p.integer("Output tokens per request", "output_tokens", 500, step=100)
    ttft_ms = p.integer("TTFT target (ms)", "ttft_ms", 1000, step=50, max_value=600_000)
    tpot_ms = p.integer("TPOT target (ms)", "tpot_ms", 40, step=5, max_value=60_000)
    return input_tokens, output_tokens, ttft_ms, tpot_ms


_SERVING_HELP = (
    "simulated: the engine's scheduler step by step, the clients started together (12 requests "
    "each, the first 2 a warm-up left out); closed-form: the steady state the plan search prunes with."
)
_ENGINE_HELP = "The simulated engine's scheduler and defaults: vLLM 0.10 (V1), SGLang 0.5, TensorRT-LLM 1.0."


def serving_inputs(p: Params, api: Callable[..., Any] | None = None) -> dict[str, str]:
    """The serving model (simulated or closed form) and the simulated engine, as keyword arguments
    of ``api`` (default :func:`genmodel.estimate`): a selector for each keyword it takes, so a page
    whose API has neither draws none. The engine is asked only while the model is simulated."""
    takes = inspect.signature(genmodel.estimate if api is None else api).parameters
    out: dict[str, str] = {}
    if "serving" in takes:
        out["serving"] = p.radio(
            "Serving model", genmodel.SERVING_MODELS, "serving", genmodel.SERVING_MODELS[0]
        )
        p.container.caption(_SERVING_HELP)
    if "engine" in takes and out.get("serving", "simulated") == "simulated":
        out["engine"] = p.select("Engine", genmodel.ENGINES, "engine", genmodel.ENGINES[0], help=_ENGINE_HELP)
    return out


def serving_caption(serving: dict[str, Any]) -> str:
    """What the serving block of an estimate's JSON says about how its figures were reached."""
    model = serving["serving_model"]
    text = f"Serving model: **{model}**" + (f" ({serving['engine']})" if serving.get("engine") else "")
    text += (
        f"; decode batch {serving['decode_batch']:,.1f}, {serving['request_rate_per_s']:,.3g} requests/s, "
        f"mean wait {format_seconds(serving['queue_wait_s'])}."
    )
    return text + (f" {serving['notes']}" if serving.get("notes") else "")


def show_notes(notes: Sequence[str], *, about: str = "") -> None:
    """An API result's ``notes`` (what its figures assume beyond what was asked: a precision the
    device lacks, a context beyond the model's maximum, a bare device's fabric between nodes, a
    fall-back to the closed form), one caption each, as the CLI prints a note line under its table;
    ``about`` names whose notes they are (a platform of a comparison)."""
    for note in notes:
        st.caption(f"Note{f' ({about})' if about else ''}: {note}")


#: plotly axis of bytes in SI prefixes (80GB, 1.2TB)
BYTES_AXIS = {"tickformat": "~s", "ticksuffix": "B"}


def tier_bytes_figure(
    labels: list[str], tiers: list[dict[str, Any]], *, title: str, capacity_name: str, height: int
) -> Any:
    """Stacked bars of weights, KV cache and activations per memory tier (the API's ``tiers`` rows,
    one per label), with each tier's capacity as a marker."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for key, name in (
        ("weights_bytes_per_device", "weights"),
        ("kv_cache_bytes_per_device", "KV cache"),
        ("activation_bytes_per_device", "activations"),
    ):
        fig.add_trace(go.Bar(x=labels, y=[t[key] for t in tiers], name=name))
    fig.add_trace(
        go.Scatter(
            x=labels,
            y=[t["capacity_bytes_per_device"] for t in tiers],
            mode="markers",
            marker={"symbol": "line-ew-open", "size": 40, "line": {"width": 3}},
            name=capacity_name,
        )
    )
    fig.update_layout(
        barmode="stack",
        title=title,
        yaxis={"title": "bytes per device", **BYTES_AXIS},
        template="plotly_white",
        height=height,
    )
    return fig


def finish_parity_figure(fig: Any, values: Sequence[float], *, title: str) -> Any:
    """A predicted-vs-measured figure's diagonal (predicted = measured over ``values``, every value
    drawn) and its log-log layout."""
    import plotly.graph_objects as go

    if values:
        fig.add_trace(
            go.Scatter(
                x=[min(values), max(values)],
                y=[min(values), max(values)],
                mode="lines",
                line={"dash": "dot", "color": "grey"},
                name="predicted = measured",
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        title=title,
        xaxis={"title": "measured", "type": "log"},
        yaxis={"title": "predicted by genmodel", "type": "log"},
        template="plotly_white",
        height=520,
    )
    return fig
