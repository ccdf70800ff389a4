#include "cli/template/template.h"

#include "cli/template/exec.h"
#include "cli/template/functions.h"
#include "cli/template/parse.h"

namespace strongroom::tmpl {

absl::StatusOr<Template> Template::Parse(std::string_view name, std::string_view text,
                                         const Options& options,
                                         const std::set<std::string, std::less<>>& functions) {
  std::set<std::string, std::less<>> known = BuiltinFunctionNames();
  known.insert(functions.begin(), functions.end());
  auto tree = ParseTree(name, text, options.left_delim, options.right_delim, known);
  if (!tree.ok()) return tree.status();
  return Template(*std::move(tree), options);
}

absl::StatusOr<std::string> Template::Execute(const json::value& dot,
                                              const FunctionMap& functions) const {
  return ExecuteTree(*tree_, dot, functions, options_);
}

const std::string& Template::name() const { return tree_->name; }

std::set<std::string, std::less<>> Template::BuiltinFunctionNames() {
  std::set<std::string, std::less<>> names;
  AddBuiltinNames(&names);
  return names;
}

}  // namespace strongroom::tmpl
