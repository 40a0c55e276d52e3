/** Errors that carry an HTTP meaning; the API's error handler turns them into problem+json. */
export interface FieldError {
  path: string;
  message: string;
}

export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    detail?: string,
    readonly errors?: FieldError[],
    readonly headers?: Record<string, string>,
  ) {
    super(detail ?? title);
  }
}

export const notFound = (what: string): AppError => new AppError(404, 'Not Found', `${what} not found`);
export const unauthorized = (detail: string): AppError => new AppError(401, 'Unauthorized', detail);
export const forbidden = (detail: string): AppError => new AppError(403, 'Forbidden', detail);
export const conflict = (detail: string): AppError => new AppError(409, 'Conflict', detail);
export const badRequest = (detail: string, errors?: FieldError[]): AppError => new AppError(400, 'Bad Request', detail, errors);

/** zod issues → field errors with dotted paths. */
export function zodFieldErrors(issues: readonly { path: readonly PropertyKey[]; message: string }[], prefix = ''): FieldError[] {
  return issues.map((i) => ({ path: [prefix, ...i.path.map(String)].filter(Boolean).join('.') || '(root)', message: i.message }));
}
