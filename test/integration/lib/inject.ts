// Preloaded into a real program (`node --import`) to crash it when a test chooses: SIGUSR2 throws
// from a signal listener (an uncaught exception), SIGHUP rejects a promise nobody handles (an
// unhandled rejection). The program's own code is unchanged; only the moment is the test's.

process.on("SIGUSR2", () => {
  throw new Error("injected crash");
});
process.on("SIGHUP", () => {
  void Promise.reject(new Error("injected rejection"));
});
