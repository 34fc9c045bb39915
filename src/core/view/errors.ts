// Error codes of the node view validator (src/core/view.ts).
import { defineErrors } from '../errors.js';

export const ViewErrors = defineErrors({
  VIEW_INVALID: {
    status: 400,
    kind: 'input',
    summary:
      'a node view is not the shape of DESIGN.md section 4, or one of its values breaks a rule; the message names the field',
  },
});
