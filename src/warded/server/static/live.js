// Refresh the approvals list when the server says it changed (server-sent events).
// Reasons being typed are kept across a refresh. Without JavaScript the page still works.
"use strict";
(function () {
  const list = document.getElementById("approvals");
  const state = document.getElementById("live-state");
  if (!list || !window.EventSource) return;
  let version = list.dataset.version || "";

  async function refresh() {
    const answer = await fetch("/approvals/list", { credentials: "same-origin" });
    if (!answer.ok) return;
    const typed = {};
    for (const input of list.querySelectorAll("input[data-keep]")) {
      if (input.value) typed[input.dataset.keep] = input.value;
    }
    const focused = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.keep : undefined;
    const html = await answer.text();
    const fresh = new DOMParser().parseFromString(html, "text/html");
    list.replaceChildren(...fresh.body.childNodes);
    for (const input of list.querySelectorAll("input[data-keep]")) {
      if (typed[input.dataset.keep]) input.value = typed[input.dataset.keep];
      if (input.dataset.keep === focused) input.focus();
    }
    list.dataset.refreshed = String(Number(list.dataset.refreshed || "0") + 1);
  }

  const source = new EventSource("/approvals/events?v=" + encodeURIComponent(version));
  source.addEventListener("open", function () {
    if (state) state.textContent = " (live)";
    list.dataset.live = "yes";
  });
  source.addEventListener("error", function () {
    if (state) state.textContent = " (reconnecting…)";
  });
  source.addEventListener("approvals", function (event) {
    if (event.data === version) return;
    version = event.data;
    refresh();
  });
})();
