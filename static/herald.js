// Herald: small enhancements only; every page works without this file.
document.addEventListener("DOMContentLoaded", () => {
  // Buttons with data-confirm ask before submitting their form.
  document.querySelectorAll("[data-confirm]").forEach((el) => {
    el.addEventListener("click", (event) => {
      if (!window.confirm(el.getAttribute("data-confirm"))) event.preventDefault();
    });
  });
});
