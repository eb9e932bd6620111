// Herald: small enhancements only; every page works without this file.
document.addEventListener("DOMContentLoaded", () => {
  // Buttons with data-confirm ask before submitting their form.
  document.querySelectorAll("[data-confirm]").forEach((el) => {
    el.addEventListener("click", (event) => {
      if (!window.confirm(el.getAttribute("data-confirm"))) event.preventDefault();
    });
  });
});

// Import progress: poll the status while the import runs; reload for the report.
document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("import");
  if (!box || box.dataset.running !== "true") return;
  const bar = document.getElementById("import-progress");
  const done = document.getElementById("import-done");
  const rate = document.getElementById("import-rate");
  const poll = async () => {
    try {
      const response = await fetch(box.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const s = await response.json();
        bar.value = s.rows_done;
        done.textContent = s.rows_done;
        rate.textContent = s.rate;
        if (s.status !== "running") { window.location.reload(); return; }
      }
    } catch (e) { /* try again */ }
    setTimeout(poll, 500);
  };
  setTimeout(poll, 500);
});

// Define Job: Unit and Value only while Delay is Yes; the target field only while
// Use Event Parameter is off. (The server ignores them in those cases anyway.)
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("define-job");
  if (!form) return;
  const unit = document.getElementById("delay_unit");
  const value = document.getElementById("delay_value");
  const yes = document.getElementById("delay-yes");
  const syncDelay = () => { unit.disabled = value.disabled = !yes.checked; };
  form.querySelectorAll('input[name="delay"]').forEach((r) => r.addEventListener("change", syncDelay));
  syncDelay();
  // Only the chosen job's own fields, and its target's, are shown and sent.
  const job = document.getElementById("job");
  const useEvent = document.getElementById("use_event_parameter");
  const targets = [document.getElementById("contact"), document.getElementById("system_user")].filter(Boolean);
  const syncTarget = () => targets.forEach((t) => { t.disabled = !useEvent || useEvent.checked; });
  const syncJob = () => {
    const chosen = job.selectedOptions[0];
    const target = chosen ? chosen.dataset.target : "";
    form.querySelectorAll("[data-job]").forEach((box) => {
      const on = chosen && box.dataset.job === chosen.value;
      box.hidden = !on;
      box.querySelectorAll("input, select, textarea").forEach((el) => { el.disabled = !on; });
    });
    form.querySelectorAll("[data-target-field]").forEach((box) => {
      const field = box.dataset.targetField;
      box.hidden = !target || (field !== "use_event_parameter" && field !== target);
    });
    if (useEvent) useEvent.disabled = !target;
    syncTarget();
  };
  if (job) job.addEventListener("change", syncJob);
  if (useEvent) useEvent.addEventListener("change", syncTarget);
  if (job) syncJob(); else syncTarget();

});

// Contact picker (Define Job, message preview): search as you type.
document.addEventListener("DOMContentLoaded", () => {
  // Contact picker: search as you type, offering matches in the datalist.
  const contact = document.querySelector("input[data-picker]");
  const options = contact && document.getElementById(contact.getAttribute("list"));
  if (!contact || !options) return;
  let timer = null;
  let asked = "";
  contact.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = contact.value.trim();
      if (q.length < 1 || q === asked) return;
      asked = q;
      try {
        const response = await fetch(contact.dataset.picker + "?q=" + encodeURIComponent(q), { headers: { Accept: "application/json" } });
        if (!response.ok) return;
        const matches = await response.json();
        options.replaceChildren(...matches.filter((m) => !m.blocked).map((m) => {
          const option = document.createElement("option");
          option.value = m.email;
          option.label = m.name ? m.name + " <" + m.email + ">" : m.email;
          return option;
        }));
      } catch (e) { /* the field still works as a plain email field */ }
    }, 150);
  });
});

// Edit Event: show only the filter of the chosen event.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("edit-event");
  if (!form) return;
  const event = document.getElementById("event");
  const sync = () => form.querySelectorAll("[data-for-events]").forEach((box) => {
    box.hidden = !box.dataset.forEvents.split(" ").includes(event.value);
  });
  event.addEventListener("change", sync);
  sync();
});
