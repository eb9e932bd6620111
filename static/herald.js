// Herald: small enhancements only; every page works without this file.
document.addEventListener("DOMContentLoaded", () => {
  // On a phone the main menu starts folded behind its Menu button.
  const menu = document.querySelector("details.herald-menu");
  if (menu) {
    const phone = window.matchMedia("(max-width: 767.98px)");
    menu.open = !phone.matches;
    phone.addEventListener("change", (e) => { menu.open = !e.matches; });
  }
  // A wizard window warns before a link leaves it with changes not saved.
  document.querySelectorAll("form[data-unsaved-warning]").forEach((form) => {
    const changed = () => { form.dataset.changed = "true"; };
    form.addEventListener("input", changed);
    form.addEventListener("change", changed);
    form.addEventListener("submit", () => { delete form.dataset.changed; });
    window.addEventListener("beforeunload", (event) => {
      if (form.dataset.changed === "true") event.preventDefault();
    });
  });
  // After a failed submit, the summary of what to correct has the focus.
  const summary = document.getElementById("error-summary");
  if (summary) summary.focus();
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

// Contact picker (Define Job, message preview): a combobox that offers matching
// contacts as you type; a picked suggestion is sent by its id (contact_id), and
// without this script the field takes an email or a name.
document.addEventListener("DOMContentLoaded", () => {
  const input = document.querySelector("input[data-picker]");
  const list = input && document.getElementById(input.getAttribute("aria-controls"));
  const picked = document.getElementById("contact_id");
  if (!input || !list || !picked) return;
  let timer = null;
  let asked = "";
  let active = -1;
  const options = () => Array.from(list.querySelectorAll('[role="option"]'));
  const close = () => {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  };
  const highlight = (i) => {
    const all = options();
    all.forEach((o, n) => { o.classList.toggle("active", n === i); o.setAttribute("aria-selected", n === i ? "true" : "false"); });
    active = i;
    if (all[i]) { input.setAttribute("aria-activedescendant", all[i].id); all[i].scrollIntoView({ block: "nearest" }); }
  };
  const choose = (option) => {
    input.value = option.dataset.email;
    picked.value = option.dataset.id;
    asked = input.value;
    close();
  };
  input.addEventListener("input", () => {
    picked.value = "";
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = input.value.trim();
      if (q.length < 1) { close(); return; }
      if (q === asked) return;
      asked = q;
      try {
        const response = await fetch(input.dataset.picker + "?q=" + encodeURIComponent(q), { headers: { Accept: "application/json" } });
        if (!response.ok) return;
        const matches = (await response.json()).filter((m) => !m.blocked);
        list.replaceChildren(...matches.map((m, n) => {
          const li = document.createElement("li");
          li.id = "contact-option-" + n;
          li.setAttribute("role", "option");
          li.setAttribute("aria-selected", "false");
          li.className = "list-group-item list-group-item-action";
          li.dataset.id = m.id;
          li.dataset.email = m.email;
          li.textContent = m.name ? m.name + " <" + m.email + ">" : m.email;
          li.addEventListener("mousedown", (e) => { e.preventDefault(); choose(li); });
          return li;
        }));
        list.hidden = matches.length === 0;
        input.setAttribute("aria-expanded", matches.length ? "true" : "false");
        active = -1;
      } catch (e) { /* the field still takes a typed email or name */ }
    }, 150);
  });
  input.addEventListener("keydown", (e) => {
    const all = options();
    if (list.hidden || all.length === 0) return;
    if (e.key === "ArrowDown") { e.preventDefault(); highlight((active + 1) % all.length); }
    else if (e.key === "ArrowUp") { e.preventDefault(); highlight(active <= 0 ? all.length - 1 : active - 1); }
    else if (e.key === "Enter" && active >= 0) { e.preventDefault(); choose(all[active]); }
    else if (e.key === "Escape") { e.preventDefault(); close(); }
  });
  input.addEventListener("blur", close);
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

// Define Time Frame: Start and End are read in the chosen zone. The zone's name is
// shown beside them, and a Start not yet touched keeps its moment when the zone
// changes (now in UTC is not now in Berlin).
document.addEventListener("DOMContentLoaded", () => {
  const zone = document.getElementById("time_zone");
  const start = document.getElementById("start");
  if (!zone || !start) return;
  const shown = start.value;
  const instant = Number(start.dataset.instant || 0);
  const local = (ms, tz) => {
    const parts = Object.fromEntries(new Intl.DateTimeFormat("en-GB", {
      timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    }).formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
    return parts.year + "-" + parts.month + "-" + parts.day + "T" + parts.hour + ":" + parts.minute;
  };
  let current = shown;
  zone.addEventListener("change", () => {
    document.querySelectorAll("[data-zone-name]").forEach((el) => { el.textContent = zone.value; });
    if (instant > 0 && start.value === current) {
      try { start.value = current = local(instant, zone.value); } catch (e) { /* an unknown zone: leave it */ }
    }
  });
});
