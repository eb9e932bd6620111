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
