/** The version `denali --version` prints and instances report. */
export const VERSION = '0.1.0';
