// The `action:` names of the programs' log lines. The course's scripts, our tests and the tools
// (run-local, bench) read the logs by these names, so each is spelled once, here; the programs
// log through these constants and the readers match on them.

export const Action = {
  ACCEPT_CONNECTIONS: "accept_connections",
  AGENCIAS: "agencias",
  AGENCY: "agency",
  AGENCY_CONNECTED: "agency_connected",
  AGENCY_DONE: "agency_done",
  APUESTA_ALMACENADA: "apuesta_almacenada",
  APUESTA_ENVIADA: "apuesta_enviada",
  APUESTA_RECIBIDA: "apuesta_recibida",
  CLOSE_CONNECTION: "close_connection",
  CLOSE_DATABASE: "close_database",
  CLOSE_FILE: "close_file",
  CLOSE_LISTENER: "close_listener",
  CONFIG: "config",
  CONFIG_LOTTERY: "config_lottery",
  CONFIG_TLS: "config_tls",
  CONNECT: "connect",
  CONNECTION: "connection",
  CONSULTA_GANADORES: "consulta_ganadores",
  GANADORES: "ganadores",
  LEER_APUESTA: "leer_apuesta",
  LOG: "log",
  LOOP_FINISHED: "loop_finished",
  NOTIFICAR_FIN: "notificar_fin",
  RECEIVE_MESSAGE: "receive_message",
  RECOVERY: "recovery",
  SHUTDOWN: "shutdown",
  SIGNAL_RECEIVED: "signal_received",
  SORTEO: "sorteo",
  STORAGE: "storage",
  STORAGE_RECOVERY: "storage_recovery",
} as const;

export type ActionName = (typeof Action)[keyof typeof Action];
