// raypipe workbench: flows, live logs, traces, state, streams, dead letters, endpoint tester.
// Served from /_raypipe/ by the app's own ingress; every address here is relative to it, so
// the page also works under a route prefix.
import { render } from "preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import cytoscape from "cytoscape";
import dagre from "cytoscape-dagre";

cytoscape.use(dagre);

const APP_ROOT = new URL("..", location.href).pathname; // where the app's own routes are

// The admin token, asked for once and kept in this tab's storage (no cookie: nothing a
// cross-site request could carry). Every call also sends the header a cross-site form cannot.
const TOKEN_KEY = "raypipe-admin-token";

function adminHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return { "x-raypipe-admin": "1", ...(token ? { authorization: `Bearer ${token}` } : {}) };
}

async function api(path, options = {}) {
  const r = await fetch(path, {
    ...options,
    headers: { "content-type": "application/json", ...adminHeaders(), ...(options.headers || {}) },
  });
  if (r.status === 401) window.dispatchEvent(new Event("raypipe-needs-token"));
  const text = await r.text();
  let body = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch (_) {
    /* not JSON: keep the text */
  }
  if (!r.ok) throw new Error(`${r.status}: ${typeof body === "string" ? body : JSON.stringify(body)}`);
  return body;
}

// --- routing: #/view/arg?query ---------------------------------------------------------------
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?");
  const [view = "flows", ...rest] = path.split("/").map(decodeURIComponent);
  return { view, arg: rest.join("/"), query: Object.fromEntries(new URLSearchParams(query)) };
}

function useRoute() {
  const [route, setRoute] = useState(parseHash());
  useEffect(() => {
    const on = () => setRoute(parseHash());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return route;
}

const go = (hash) => (location.hash = hash);
const fmtTime = (ms) => new Date(ms).toLocaleTimeString(undefined, { hour12: false }) +
  "." + String(Math.floor(ms % 1000)).padStart(3, "0");
const fmtMs = (ms) => (ms == null ? "…" : ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(2)} s`);
const short = (id) => (id || "").slice(0, 8);

function Json({ value }) {
  return <pre class="json">{JSON.stringify(value, null, 2)}</pre>;
}

function ErrorNote({ error }) {
  return error ? <div class="error" role="alert">{String(error.message || error)}</div> : null;
}

// --- flows -----------------------------------------------------------------------------------
const KIND_COLORS = {
  http: "#2563eb", queue: "#059669", cron: "#d97706", state: "#7c3aed", stream: "#db2777",
  noop: "#6b7280", source: "#9ca3af", topic: "#9ca3af",
};

function FlowsView({ app, route }) {
  const flow = route.arg || app.flows[0] || "";
  const [graph, setGraph] = useState(null);
  const [error, setError] = useState(null);
  const box = useRef(null);

  useEffect(() => {
    setGraph(null);
    api(`api/flows${flow ? `?flow=${encodeURIComponent(flow)}` : ""}`).then(setGraph, setError);
  }, [flow]);

  useEffect(() => {
    if (!graph || !box.current) return;
    const elements = [
      ...graph.steps.map((s) => ({
        data: { id: s.name, label: `${s.name}\n${s.triggers.join("\n")}`, kind: s.kind },
        classes: `step ${s.kind}`,
      })),
      ...graph.pseudo_nodes.map((p) => ({
        data: { id: p.name, label: p.label, kind: p.kind }, classes: `pseudo ${p.kind}`,
      })),
      ...graph.edges.map((e, i) => ({
        data: { id: `e${i}`, source: e.source, target: e.target, label: e.topic },
        classes: e.virtual ? "virtual" : "",
      })),
    ];
    const cy = cytoscape({
      container: box.current,
      elements,
      wheelSensitivity: 0.3,
      style: [
        { selector: "node", style: {
          shape: "round-rectangle", "background-color": "#fff", "border-width": 2,
          "border-color": (n) => KIND_COLORS[n.data("kind")] || "#333",
          label: "data(label)", "text-wrap": "wrap", "text-valign": "center",
          "font-size": 11, width: "label", height: "label", padding: 10,
        } },
        { selector: "node.pseudo", style: { "border-style": "dashed", shape: "ellipse" } },
        { selector: "node.noop", style: { "border-style": "dotted" } },
        { selector: "edge", style: {
          "curve-style": "bezier", "target-arrow-shape": "triangle", width: 1.5,
          label: "data(label)", "font-size": 9, "text-background-color": "#fff",
          "text-background-opacity": 1, "line-color": "#64748b", "target-arrow-color": "#64748b",
        } },
        { selector: "edge.virtual", style: { "line-style": "dashed" } },
      ],
      layout: { name: "dagre", rankDir: "LR", nodeSep: 30, rankSep: 90 },
    });
    window.raypipeFlow = cy; // for tests and the curious: the graph as drawn
    return () => cy.destroy();
  }, [graph]);

  return (
    <section>
      <div class="toolbar">
        <label>Flow{" "}
          <select data-testid="flow-picker" value={flow} onChange={(e) => go(`#/flows/${encodeURIComponent(e.target.value)}`)}>
            {app.flows.map((f) => <option value={f}>{f}</option>)}
          </select>
        </label>
        <span class="legend">
          {Object.entries(KIND_COLORS).slice(0, 6).map(([k, c]) => <span style={{ borderColor: c }}>{k}</span>)}
          <span class="dashed">virtual / trigger source</span>
        </span>
      </div>
      <ErrorNote error={error} />
      <div class="graph" ref={box} data-testid="flow-graph" />
      {graph && (
        <table class="steps" data-testid="flow-steps">
          <thead><tr><th>step</th><th>kind</th><th>triggers</th><th>enqueues</th><th>Ray</th><th>file</th></tr></thead>
          <tbody>
            {graph.steps.map((s) => (
              <tr data-step={s.name}>
                <td>{s.name}</td><td><span class={`kind ${s.kind}`}>{s.kind}</span></td>
                <td>{s.triggers.join(", ")}</td>
                <td>{[...s.enqueues, ...s.virtual_enqueues.map((v) => `${v} (virtual)`)].join(", ")}</td>
                <td class="muted" data-testid="step-ray">
                  {Object.entries(s.ray || {}).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ")}
                </td>
                <td class="muted">{s.file}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

// --- logs ------------------------------------------------------------------------------------
function LogsView({ app, route }) {
  const [filters, setFilters] = useState({ flow: "", step: "", level: "", trace: route.query.trace || "" });
  const [lines, setLines] = useState([]);
  const [error, setError] = useState(null);
  useEffect(() => setFilters((f) => ({ ...f, trace: route.query.trace || "" })), [route.query.trace]);

  useEffect(() => {
    let stop = false;
    let after = 0;
    setLines([]);
    const q = Object.entries(filters).filter(([, v]) => v).map(([k, v]) => `&${k}=${encodeURIComponent(v)}`).join("");
    (async () => {
      while (!stop) {
        try {
          const r = await api(`api/logs?after=${after}&wait=${after ? 10 : 0}${q}`);
          if (stop) return;
          after = r.seq;
          setError(null);
          if (r.lines.length) setLines((old) => [...old, ...r.lines].slice(-2000));
        } catch (e) {
          setError(e);
          await new Promise((res) => setTimeout(res, 2000));
        }
      }
    })();
    return () => { stop = true; };
  }, [JSON.stringify(filters)]);

  const steps = useMemo(() => [...new Set(app.steps)].sort(), [app]);
  const set = (k) => (e) => setFilters({ ...filters, [k]: e.target.value });
  return (
    <section>
      <div class="toolbar">
        <select aria-label="flow" value={filters.flow} onChange={set("flow")}>
          <option value="">all flows</option>{app.flows.map((f) => <option>{f}</option>)}
        </select>
        <select aria-label="step" value={filters.step} onChange={set("step")}>
          <option value="">all steps</option>{steps.map((s) => <option>{s}</option>)}
        </select>
        <select aria-label="level" value={filters.level} onChange={set("level")}>
          <option value="">all levels</option>{["debug", "info", "warn", "error"].map((l) => <option>{l}</option>)}
        </select>
        <input aria-label="trace id" placeholder="trace id" value={filters.trace} onInput={set("trace")} />
        <span class="muted">{lines.length} lines, live</span>
      </div>
      <ErrorNote error={error} />
      <table class="logs" data-testid="log-lines">
        <thead><tr><th>time</th><th>level</th><th>step</th><th>trace</th><th>message</th><th>fields</th></tr></thead>
        <tbody>
          {lines.map((l) => (
            <tr class={`lvl-${l.level}`} data-trace={l.trace_id}>
              <td>{fmtTime(l.time)}</td><td>{l.level}</td><td>{l.step}</td>
              <td><a href={`#/traces/${l.trace_id}`}>{short(l.trace_id)}</a></td>
              <td>{l.msg}</td>
              <td class="fields">{Object.keys(l.fields || {}).length ? JSON.stringify(l.fields) : ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

// --- traces ----------------------------------------------------------------------------------
function TracesView({ route }) {
  return route.arg ? <TraceDetail id={route.arg} /> : <TraceList />;
}

function usePolling(load, ms, deps) {
  const [value, setValue] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let stop = false;
    const tick = () => load().then((v) => !stop && (setValue(v), setError(null)), (e) => !stop && setError(e));
    tick();
    const timer = setInterval(tick, ms);
    return () => { stop = true; clearInterval(timer); };
  }, deps);
  return [value, error];
}

function TraceList() {
  const [traces, error] = usePolling(() => api("api/traces?limit=200"), 2000, []);
  return (
    <section>
      <ErrorNote error={error} />
      <table class="traces" data-testid="trace-list">
        <thead><tr><th>trace</th><th>started by</th><th>start</th><th>duration</th><th>deliveries</th><th>steps</th><th>outcome</th></tr></thead>
        <tbody>
          {(traces || []).map((t) => (
            <tr data-trace={t.trace_id}>
              <td><a href={`#/traces/${t.trace_id}`}>{short(t.trace_id)}</a></td>
              <td>{t.step}</td><td>{fmtTime(t.start)}</td><td>{fmtMs(t.duration)}</td>
              <td>{t.spans}</td><td class="muted">{t.steps.join(", ")}</td>
              <td><span class={`outcome ${t.outcome}`}>{t.outcome}</span></td>
            </tr>
          ))}
        </tbody>
      </table>
      {traces && !traces.length && <p class="muted">No traces yet: call an endpoint (see Endpoints).</p>}
    </section>
  );
}

function TraceDetail({ id }) {
  const [trace, error] = usePolling(() => api(`api/traces/${encodeURIComponent(id)}`), 1500, [id]);
  if (!trace) return <section><ErrorNote error={error} /><p class="muted">Loading trace {id}…</p></section>;
  const t0 = Math.min(...trace.spans.map((s) => s.start));
  const t1 = Math.max(...trace.spans.map((s) => s.end ?? Date.now()));
  const total = Math.max(t1 - t0, 1);
  return (
    <section>
      <p><a href="#/traces">← traces</a> · trace <code>{id}</code> ·{" "}
        <a href={`#/logs?trace=${id}`}>its logs</a> · {trace.spans.length} deliveries over {fmtMs(total)}
        {trace.dropped_spans > 0 && <span class="muted"> (and {trace.dropped_spans} more, not kept)</span>}</p>
      <table class="waterfall" data-testid="trace-waterfall">
        <thead><tr><th>step</th><th>attempt</th><th>start</th><th>duration</th><th>outcome</th><th class="bar-col">timeline</th></tr></thead>
        <tbody>
          {trace.spans.map((s) => {
            const dur = (s.end ?? Date.now()) - s.start;
            return (
              <tr data-step={s.step} data-outcome={s.outcome || "running"}>
                <td>{s.step}<div class="muted">{s.kind}{s.topic ? ` · ${s.topic}` : ""}</div></td>
                <td>{s.attempt}</td><td>+{fmtMs(s.start - t0)}</td><td>{fmtMs(s.end ? dur : null)}</td>
                <td><span class={`outcome ${s.outcome || "running"}`}>{s.outcome || "running"}</span>
                  {s.error && <div class="error-text">{s.error}</div>}</td>
                <td class="bar-col"><div class="bar-track">
                  <div class={`bar ${s.outcome || "running"}`} style={{
                    left: `${((s.start - t0) / total) * 100}%`, width: `${Math.max((dur / total) * 100, 0.5)}%` }} />
                </div></td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <h3>Log lines</h3>
      <table class="logs">
        <tbody>
          {trace.logs.map((l) => (
            <tr class={`lvl-${l.level}`}><td>{fmtTime(l.time)}</td><td>{l.level}</td><td>{l.step}</td><td>{l.msg}</td>
              <td class="fields">{Object.keys(l.fields || {}).length ? JSON.stringify(l.fields) : ""}</td></tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

// --- state and streams -----------------------------------------------------------------------
function ItemEditor({ item, save, remove }) {
  const [text, setText] = useState(JSON.stringify(item.data, null, 2));
  const [error, setError] = useState(null);
  useEffect(() => setText(JSON.stringify(item.data, null, 2)), [item]);
  const onSave = async () => {
    try {
      await save(JSON.parse(text));
      setError(null);
    } catch (e) {
      setError(e);
    }
  };
  return (
    <div class="editor" data-testid="item-editor">
      <h3>{item.id}</h3>
      <textarea aria-label="item JSON" rows={16} value={text} onInput={(e) => setText(e.target.value)} />
      <div class="buttons">
        <button onClick={onSave}>Save</button>
        <button class="danger" onClick={() => confirm(`Delete ${item.id}?`) && remove().catch(setError)}>Delete</button>
      </div>
      <ErrorNote error={error} />
    </div>
  );
}

function Browser({ groupsUrl, itemsUrl, itemUrl, toItem, title }) {
  const [groups, setGroups] = useState([]);
  const [group, setGroup] = useState(null);
  const [items, setItems] = useState([]);
  const [selected, setSelected] = useState(null);
  const [error, setError] = useState(null);
  const loadGroups = () => api(groupsUrl).then(setGroups, setError);
  const loadItems = (g) => api(itemsUrl(g)).then((xs) => setItems(xs.map(toItem)), setError);
  useEffect(() => { setGroup(null); setSelected(null); loadGroups(); }, [groupsUrl]);
  useEffect(() => { if (group) loadItems(group); }, [group]);
  const save = async (value) => {
    await api(itemUrl(group, selected.id), { method: "PUT", body: JSON.stringify(value) });
    await loadItems(group);
    setSelected({ id: selected.id, data: value });
  };
  const remove = async () => {
    await api(itemUrl(group, selected.id), { method: "DELETE" });
    setSelected(null);
    await loadItems(group);
    await loadGroups();
  };
  return (
    <div class="browser">
      <div class="column">
        <h3>{title} groups <button class="small" onClick={loadGroups}>↻</button></h3>
        <ul data-testid="groups">{groups.map((g) => (
          <li class={g === group ? "active" : ""}><a onClick={() => { setGroup(g); setSelected(null); }}>{g}</a></li>))}
        </ul>
      </div>
      <div class="column">
        <h3>Items {group && <button class="small" onClick={() => loadItems(group)}>↻</button>}</h3>
        <ul data-testid="items">{items.map((it) => (
          <li class={selected && it.id === selected.id ? "active" : ""}><a onClick={() => setSelected(it)}>{it.id}</a></li>))}
        </ul>
      </div>
      <div class="column wide">
        <ErrorNote error={error} />
        {selected ? <ItemEditor item={selected} save={save} remove={remove} /> : <p class="muted">Pick an item.</p>}
      </div>
    </div>
  );
}

function StateView() {
  return (
    <section>
      <Browser title="State" groupsUrl="api/state" itemsUrl={(g) => `api/state/${encodeURIComponent(g)}`}
        itemUrl={(g, id) => `api/state/${encodeURIComponent(g)}/${encodeURIComponent(id)}`}
        toItem={(x) => x} />
    </section>
  );
}

function StreamsView({ app, route }) {
  const stream = route.arg || app.streams[0];
  if (!stream) return <section><p class="muted">This app declares no streams.</p></section>;
  const base = `api/streams/${encodeURIComponent(stream)}`;
  return (
    <section>
      <div class="toolbar">
        <label>Stream{" "}
          <select value={stream} onChange={(e) => go(`#/streams/${encodeURIComponent(e.target.value)}`)}>
            {app.streams.map((s) => <option>{s}</option>)}
          </select>
        </label>
      </div>
      <Browser title="Stream" groupsUrl={base} itemsUrl={(g) => `${base}/${encodeURIComponent(g)}`}
        itemUrl={(g, id) => `${base}/${encodeURIComponent(g)}/${encodeURIComponent(id)}`}
        toItem={(x) => ({ id: x.id, data: x })} />
    </section>
  );
}

// --- dead letters ----------------------------------------------------------------------------
function StatusView() {
  const [stats, error] = usePolling(() => api("api/status"), 2000, []);
  const steps = Object.entries(stats?.steps || {}).filter(([s]) => s !== "*").sort();
  const pools = Object.entries(stats?.pools || {}).sort();
  const stepCols = ["accepted", "done", "retries", "failed_attempts", "crashes", "dead_lettered"];
  const poolCols = ["actors", "starting", "busy", "backlog", "min", "max"];
  return (
    <section>
      <ErrorNote error={error} />
      {stats && <p data-testid="status-summary">
        <strong>{stats.in_flight}</strong> in flight · <strong>{stats.dead_letters}</strong> dead letters · state <code>{stats.state || "memory"}</code>
      </p>}
      <h3>Actor pools</h3>
      {pools.length ? (
        <table data-testid="pools">
          <thead><tr><th>step</th>{poolCols.map((c) => <th>{c}</th>)}</tr></thead>
          <tbody>{pools.map(([step, p]) => (
            <tr data-pool={step}><td>{step}</td>{poolCols.map((c) => <td data-col={c}>{p[c] ?? 0}</td>)}</tr>))}
          </tbody>
        </table>) : <p class="muted">No actor pool is running (a step with <code>RayOptions(actors=...)</code> starts one).</p>}
      <h3>Steps</h3>
      <table data-testid="step-tally">
        <thead><tr><th>step</th>{stepCols.map((c) => <th>{c.replace("_", " ")}</th>)}<th>oldest in flight</th></tr></thead>
        <tbody>{steps.map(([step, t]) => (
          <tr data-step={step}><td>{step}</td>{stepCols.map((c) => <td>{t[c] ?? 0}</td>)}
            <td>{step in (stats.oldest_in_flight || {}) ? `${stats.oldest_in_flight[step].toFixed(1)} s` : "-"}</td></tr>))}
        </tbody>
      </table>
    </section>
  );
}

function DeadLettersView({ route }) {
  const [letters, error] = usePolling(() => api("dlq"), 3000, [route.arg]);
  const [detail, setDetail] = useState(null);
  const [note, setNote] = useState(null);
  useEffect(() => {
    setDetail(null);
    if (route.arg) api(`dlq/${encodeURIComponent(route.arg)}`).then(setDetail, setNote);
  }, [route.arg]);
  const replay = async (id) => {
    try {
      const r = await api(id ? `dlq/${encodeURIComponent(id)}/replay` : "dlq/replay", { method: "POST" });
      setNote({ message: `Replayed: ${r.replayed.join(", ") || "nothing"}` });
      if (id) go("#/dlq");
    } catch (e) {
      setNote(e);
    }
  };
  return (
    <section>
      {note && <div class="note" role="status">{note.message}</div>}
      <ErrorNote error={error} />
      <div class="toolbar"><button onClick={() => replay(null)} disabled={!letters || !letters.length}>Replay all</button></div>
      <table data-testid="dead-letters">
        <thead><tr><th>delivery</th><th>step</th><th>topic</th><th>attempts</th><th>last error</th><th>trace</th><th /></tr></thead>
        <tbody>
          {(letters || []).map((d) => (
            <tr data-id={d.id}>
              <td><a href={`#/dlq/${encodeURIComponent(d.id)}`}>{short(d.id)}</a></td><td>{d.step}</td><td>{d.topic}</td>
              <td>{d.errors.length}</td><td class="error-text">{d.errors[d.errors.length - 1]?.error}</td>
              <td><a href={`#/traces/${d.trace_id}`}>{short(d.trace_id)}</a></td>
              <td><button onClick={() => replay(d.id)}>Replay</button></td>
            </tr>
          ))}
        </tbody>
      </table>
      {letters && !letters.length && <p class="muted">No dead letters.</p>}
      {detail && (
        <div class="detail" data-testid="dead-letter">
          <h3>{detail.id}</h3>
          <p>step <b>{detail.step}</b> · topic {detail.topic} · trace <a href={`#/traces/${detail.trace_id}`}>{detail.trace_id}</a></p>
          <h4>Payload</h4><Json value={detail.payload} />
          {detail.errors.map((e) => (
            <div><h4>Attempt {e.attempt}: {e.error}</h4><pre class="traceback">{e.traceback}</pre></div>
          ))}
          <button onClick={() => replay(detail.id)}>Replay</button>
        </div>
      )}
    </section>
  );
}

// --- endpoint tester -------------------------------------------------------------------------
function example(schema, defs = schema?.$defs || {}) {
  if (!schema) return {};
  if (schema.$ref) return example(defs[schema.$ref.split("/").pop()], defs);
  if (schema.default !== undefined) return schema.default;
  if (schema.examples?.length) return schema.examples[0];
  if (schema.anyOf) return example(schema.anyOf.find((s) => s.type !== "null") || schema.anyOf[0], defs);
  switch (schema.type) {
    case "object": return Object.fromEntries(Object.entries(schema.properties || {}).map(([k, v]) => [k, example(v, defs)]));
    case "array": return [];
    case "integer": case "number": return schema.minimum ?? (schema.exclusiveMinimum != null ? schema.exclusiveMinimum + 1 : 0);
    case "boolean": return false;
    case "string": return schema.format === "email" ? "user@example.com" : "";
    default: return null;
  }
}

function EndpointsView({ app, route }) {
  const endpoints = app.endpoints;
  const index = Math.max(0, endpoints.findIndex((e) => `${e.method} ${e.path}` === route.query.e));
  const ep = endpoints[index];
  const params = ep ? [...ep.path.matchAll(/\{([^}:]+)/g)].map((m) => m[1]) : [];
  const [values, setValues] = useState({});
  const [body, setBody] = useState("");
  const [response, setResponse] = useState(null);
  const [sending, setSending] = useState(false);
  useEffect(() => {
    setValues({});
    setResponse(null);
    setBody(ep && ep.body_schema ? JSON.stringify(example(ep.body_schema), null, 2) : "");
  }, [index]);
  if (!ep) return <section><p class="muted">This app has no http steps.</p></section>;
  const send = async () => {
    setSending(true);
    const path = ep.path.replace(/\{([^}:]+)[^}]*\}/g, (_, n) => encodeURIComponent(values[n] || ""));
    const started = performance.now();
    try {
      const hasBody = !["GET", "HEAD", "DELETE"].includes(ep.method);
      const r = await fetch(APP_ROOT.replace(/\/$/, "") + path, {
        method: ep.method, headers: { "content-type": "application/json" },
        body: hasBody ? body || "null" : undefined,
      });
      const text = await r.text();
      let parsed = text;
      try { parsed = JSON.parse(text); } catch (_) { /* text */ }
      setResponse({ status: r.status, trace: r.headers.get("x-trace-id"), body: parsed, ms: performance.now() - started });
    } catch (e) {
      setResponse({ status: "network error", body: String(e) });
    }
    setSending(false);
  };
  return (
    <section class="tester">
      <div class="toolbar">
        <select aria-label="endpoint" data-testid="endpoint-picker" value={`${ep.method} ${ep.path}`}
          onChange={(e) => go(`#/endpoints?e=${encodeURIComponent(e.target.value)}`)}>
          {endpoints.map((e) => <option value={`${e.method} ${e.path}`}>{e.method} {e.path} ({e.step})</option>)}
        </select>
      </div>
      {ep.description && <p class="muted">{ep.description}</p>}
      {params.map((p) => (
        <label class="param">{p}{" "}
          <input aria-label={`path parameter ${p}`} value={values[p] || ""} onInput={(e) => setValues({ ...values, [p]: e.target.value })} />
        </label>
      ))}
      {!["GET", "HEAD", "DELETE"].includes(ep.method) && (
        <label class="body">Body (JSON)
          <textarea aria-label="request body" rows={10} value={body} onInput={(e) => setBody(e.target.value)} />
        </label>
      )}
      <button onClick={send} disabled={sending}>Send {ep.method}</button>
      {response && (
        <div class="response" data-testid="response">
          <p>Status <b data-testid="response-status">{response.status}</b>{response.ms != null && ` in ${fmtMs(response.ms)}`}
            {response.trace && <> · trace <a data-testid="response-trace" href={`#/traces/${response.trace}`}>{response.trace}</a></>}</p>
          <Json value={response.body} />
        </div>
      )}
    </section>
  );
}

// --- the page --------------------------------------------------------------------------------
const VIEWS = [
  ["flows", "Flows", FlowsView], ["logs", "Logs", LogsView], ["traces", "Traces", TracesView],
  ["state", "State", StateView], ["streams", "Streams", StreamsView],
  ["dlq", "Dead letters", DeadLettersView], ["endpoints", "Endpoints", EndpointsView],
  ["status", "Status", StatusView],
];

function TokenForm() {
  const [token, setToken] = useState("");
  const open = (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, token.trim());
    location.reload();
  };
  return (
    <form class="token" data-testid="token-form" onSubmit={open}>
      <p>This app's admin surface needs its admin token (the <code>admin_token</code> setting).
        It is kept in this tab only.</p>
      <input type="password" aria-label="admin token" value={token}
        onInput={(e) => setToken(e.target.value)} autofocus />
      <button type="submit">Open the workbench</button>
    </form>
  );
}

function Workbench() {
  const route = useRoute();
  const [app, setApp] = useState(null);
  const [error, setError] = useState(null);
  const [needsToken, setNeedsToken] = useState(false);
  useEffect(() => {
    const on = () => setNeedsToken(true);
    window.addEventListener("raypipe-needs-token", on);
    return () => window.removeEventListener("raypipe-needs-token", on);
  }, []);
  useEffect(() => {
    Promise.all([api("api/app"), api("api/flows")]).then(([a, g]) => {
      setApp({ ...a, steps: g.steps.map((s) => s.name) });
      document.title = `${a.name} · raypipe workbench`;
    }, setError);
  }, []);
  const [, , View] = VIEWS.find(([v]) => v === route.view) || VIEWS[0];
  return (
    <>
      <header>
        <strong>raypipe</strong> <span class="app-name">{app?.name}</span>
        {app?.version && <span class="muted" data-testid="app-version" title="the deployed version (a hash of the app's files)">{app.version}</span>}
        <nav>{VIEWS.map(([v, label]) => (
          <a href={`#/${v}`} class={route.view === v || (!VIEWS.some(([x]) => x === route.view) && v === "flows") ? "active" : ""}>{label}</a>))}
          <a href={APP_ROOT + "docs"} target="_blank" rel="noreferrer">API docs</a>
        </nav>
      </header>
      <main>
        {needsToken ? <TokenForm /> : <>
          <ErrorNote error={error} />
          {app && <View app={app} route={route} />}
        </>}
      </main>
    </>
  );
}

render(<Workbench />, document.getElementById("root"));
