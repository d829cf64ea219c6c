/** The typed client arrives with the service API; this entry point exists so the workspace resolves. */
export const SDK_VERSION = '0.1.0';
