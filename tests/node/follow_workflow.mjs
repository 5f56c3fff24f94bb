// Follows a stream workflow with Motia's own Node stream client, unchanged:
//   node follow_workflow.mjs http://127.0.0.1:PORT
// Starts a workflow over HTTP, prints each state the client's group subscription reports for
// it, and exits 0 once the client shows it completed (1 on timeout).
import { Stream } from "@motiadev/stream-client-node";

const base = process.argv[2];
const stream = new Stream(base.replace("http", "ws") + "/streams");
const group = stream.subscribeGroup("workflows", "active-workflows");
let workflowId = null;
const seen = [];

const timer = setTimeout(() => {
  console.log(JSON.stringify({ ok: false, seen }));
  process.exit(1);
}, 60000);

group.addChangeListener((items) => {
  const item = (items || []).find((i) => i.id === workflowId);
  if (!item) return;
  seen.push([item.completedSteps, item.status]);
  if (item.status === "completed") {
    clearTimeout(timer);
    console.log(JSON.stringify({ ok: true, seen }));
    stream.close();
    process.exit(0);
  }
});

// Give the socket time to open and join before starting the workflow.
setTimeout(async () => {
  const r = await fetch(base + "/api/workflow/stream/start", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ totalSteps: 5 }),
  });
  workflowId = (await r.json()).workflowId;
}, 1500);
