// Shipyard dashboard: a few lines of progressive enhancement, no framework, no build step.
// Every page works without this file; with it:
//   [data-refresh][data-src]  re-fetch every N ms (tab visible, nobody typing in it) and swap the
//                             element with the same id from the answer; data-refresh="0" stops.
//                             The answer's own data-refresh sets the pace of the next fetch;
//                             when its data-subject differs (another rollout), #flash is cleared.
//   form[data-swap="a b"]     post with fetch, then swap #a and #b from the page it lands on.
//   details[data-src]         load the [data-slot] body the first time it opens.
//   ?notice=...               dropped from the address bar once shown, so a reload does not repeat it.
"use strict";
(function () {
  const PARTIAL = { "X-Shipyard-Partial": "1" };
  const polling = new Set();

  async function load(url, init) {
    const resp = await fetch(url, Object.assign({ credentials: "same-origin" }, init));
    if (new URL(resp.url).pathname === "/ui/login") {
      window.location.assign(resp.url); // the session ended: log in again
      return null;
    }
    return new DOMParser().parseFromString(await resp.text(), "text/html");
  }

  function swap(doc, ids) {
    for (const id of ids) {
      const fresh = doc.getElementById(id);
      const old = document.getElementById(id);
      if (fresh && old) {
        const moved = old.dataset.subject && fresh.dataset.subject !== old.dataset.subject;
        old.replaceWith(document.importNode(fresh, true));
        const flash = document.getElementById("flash");
        if (moved && flash) flash.replaceChildren(); // it spoke of what is no longer shown
        watch(document.getElementById(id));
      }
    }
  }

  function watch(el) {
    if (!el || !el.id || !el.dataset.src || polling.has(el.id)) return;
    const every = Number(el.dataset.refresh || 0);
    if (!every) return;
    polling.add(el.id);
    const tick = async () => {
      const now = document.getElementById(el.id);
      if (!now || !Number(now.dataset.refresh || 0)) {
        polling.delete(el.id);
        return;
      }
      const busy = now.contains(document.activeElement) && document.activeElement !== document.body;
      if (!document.hidden && !busy) {
        try {
          const doc = await load(now.dataset.src, { headers: PARTIAL });
          if (doc) swap(doc, [el.id]);
        } catch (err) {
          /* offline for a moment: try again on the next tick */
        }
      }
      // the answer may change the pace (a rollout ended, or a new one started) or stop it
      const next = document.getElementById(el.id);
      const pace = next ? Number(next.dataset.refresh || 0) : 0;
      if (pace) {
        window.setTimeout(tick, pace);
      } else {
        polling.delete(el.id);
      }
    };
    window.setTimeout(tick, every);
  }

  document.addEventListener("submit", async (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.swap) return;
    ev.preventDefault();
    const button = ev.submitter;
    const action = (button && button.getAttribute("formaction")) || form.action;
    const body = new URLSearchParams(new FormData(form, button));
    form.querySelectorAll("button").forEach((b) => (b.disabled = true));
    form.classList.add("busy");
    try {
      const doc = await load(action, { method: "POST", body, headers: PARTIAL });
      if (doc) swap(doc, form.dataset.swap.split(/\s+/));
    } catch (err) {
      form.submit(); // let the browser do it the plain way
    } finally {
      form.querySelectorAll("button").forEach((b) => (b.disabled = false));
      form.classList.remove("busy");
    }
  });

  document.addEventListener(
    "toggle",
    async (ev) => {
      const box = ev.target;
      if (!(box instanceof HTMLDetailsElement) || !box.open || !box.dataset.src) return;
      const slot = box.querySelector("[data-slot]");
      if (!slot || slot.dataset.loaded) return;
      slot.dataset.loaded = "1";
      const doc = await load(box.dataset.src, { headers: PARTIAL });
      if (doc) slot.replaceChildren(...Array.from(doc.body.childNodes, (n) => document.importNode(n, true)));
    },
    true,
  );

  document.querySelectorAll("[data-refresh]").forEach(watch);

  const here = new URL(window.location.href);
  if (here.searchParams.has("notice")) {
    here.searchParams.delete("notice");
    window.history.replaceState(null, "", here.pathname + here.search + here.hash);
  }
})();
