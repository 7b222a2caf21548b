// mqttguard dashboard: refreshes the page's tables and runs the live
// view. Served from the dashboard's own origin; the page allows no other
// script (Content-Security-Policy).
"use strict";
(() => {
  // Tables: the server renders <main> again every 2 s (?part=main);
  // the refresh waits while a field in it has the focus.
  const main = document.querySelector("main[data-refresh]");
  if (main) {
    let busy = false;
    setInterval(async () => {
      const f = document.activeElement;
      if (busy || document.hidden || (f && f !== document.body && main.contains(f))) return;
      busy = true;
      try {
        const u = new URL(location.href);
        u.searchParams.set("part", "main");
        u.searchParams.delete("done");
        u.searchParams.delete("error");
        u.searchParams.delete("sig");
        const r = await fetch(u, { credentials: "same-origin", redirect: "manual" });
        if (r.ok) main.innerHTML = await r.text();
        else if (r.status === 401 || r.type === "opaqueredirect") location.reload();
      } catch (e) {
        // the server is away; try again next time
      } finally {
        busy = false;
      }
    }, 2000);
  }

  // The live view: one EventSource, filtered by the server; held still
  // while the pointer is over the list.
  const live = document.getElementById("live");
  if (!live) return;
  const list = live.querySelector(".events"), status = live.querySelector(".status");
  const form = document.getElementById("filter");
  const MAX = 200;
  let source = null, held = [], missed = 0, paused = false;

  const cell = (cls, text) => {
    const s = document.createElement("span");
    s.className = cls;
    s.textContent = text;
    return s;
  };
  const row = (e) => {
    const li = document.createElement("li");
    li.dataset.client = e.client;
    li.dataset.topic = e.topic || "";
    li.dataset.addr = e.addr || "";
    if (e.observed) li.className = "observed";
    li.append(
      cell("at", new Date(e.at).toLocaleTimeString()), " ",
      cell("verdict", (e.observed ? "would " : "") + e.verdict + (e.code === "0x00" ? "" : " " + e.code)), " ",
      cell("point", e.point), " ",
      cell("client", e.client), " ",
      cell("user", e.username ? "(" + e.username + ")" : ""), " ",
      cell("addr", e.addr || ""), " ",
      cell("topic", e.topic || ""), " · ",
      cell("cause", e.cause));
    return li;
  };
  const show = (events) => {
    const frag = document.createDocumentFragment();
    for (let i = events.length - 1; i >= 0; i--) frag.append(row(events[i]));
    list.prepend(frag);
    while (list.children.length > MAX) list.lastElementChild.remove();
  };
  const say = () => {
    let s = paused ? "held: " + held.length + " new" : "live";
    if (missed) s += " · " + missed + " not shown (a flood, or older than the buffer)";
    status.textContent = s;
  };
  const open = () => {
    if (source) source.close();
    const q = new URLSearchParams(new FormData(form));
    source = new EventSource("events?" + q.toString());
    source.addEventListener("refusals", (m) => {
      const b = JSON.parse(m.data);
      missed += b.missed;
      if (paused) {
        held.push(...b.events);
        if (held.length > MAX) {
          missed += held.length - MAX;
          held = held.slice(-MAX);
        }
      } else {
        show(b.events);
      }
      say();
    });
    source.onopen = say;
    source.onerror = () => { status.textContent = "reconnecting…"; };
  };
  list.addEventListener("mouseenter", () => { paused = true; say(); });
  list.addEventListener("mouseleave", () => {
    paused = false;
    show(held);
    held = [];
    say();
  });
  let timer = 0;
  form.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { list.replaceChildren(); missed = 0; open(); }, 300);
  });
  form.addEventListener("submit", (e) => e.preventDefault());
  open();
})();
