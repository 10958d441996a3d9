// Runs before first paint (blocking, tiny): apply the saved theme so the page never flashes.
(function () {
  try {
    var t = localStorage.getItem("pp-theme");
    if (t === "light" || t === "dark") document.documentElement.setAttribute("data-theme", t);
  } catch (e) { /* storage disabled: follow the system */ }
})();
