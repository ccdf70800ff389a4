// Execution: Go text/template's actions, variables, data access and printing over JSON data.
#include <gtest/gtest.h>

#include <vector>

#include "tests/unit/template/template_test_util.h"

namespace strongroom::tmpl::testing {
namespace {

constexpr char kSecret[] =
    R"({"Data":{"data":{"anthropic_api_key":"sk-a","openai_api_key":"sk-o",)"
    R"("stripe_secret_key":"sk_s"},"metadata":{"version":1}},"LeaseDuration":0,)"
    R"("LeaseID":"","Renewable":false,"Warnings":null})";

// The Vault Agent injector annotation this engine exists for (a YAML `|` block, so the text
// ends with a newline, which the final `-}}` trims).
TEST(TemplateExec, VaultAgentInjectorExportTemplate) {
  const std::string text =
      "{{- with secret \"secret/data/lobstack/api-keys\" -}}\n"
      "export ANTHROPIC_API_KEY=\"{{ .Data.data.anthropic_api_key }}\"\n"
      "export OPENAI_API_KEY=\"{{ .Data.data.openai_api_key }}\"\n"
      "export STRIPE_SECRET_KEY=\"{{ .Data.data.stripe_secret_key }}\"\n"
      "{{- end -}}\n";
  std::vector<std::string> paths;
  FunctionMap fns;
  fns["secret"] = [&](std::span<const json::value> args) -> absl::StatusOr<json::value> {
    for (const auto& a : args) paths.emplace_back(a.as_string());
    return Json(kSecret);
  };
  EXPECT_EQ(Out(text, {}, {}, fns),
            "export ANTHROPIC_API_KEY=\"sk-a\"\n"
            "export OPENAI_API_KEY=\"sk-o\"\n"
            "export STRIPE_SECRET_KEY=\"sk_s\"");
  EXPECT_EQ(paths, std::vector<std::string>{"secret/data/lobstack/api-keys"});
}

TEST(TemplateExec, CallerFunctionReceivesEvaluatedArguments) {
  std::vector<json::value> seen;
  FunctionMap fns;
  fns["secret"] = [&](std::span<const json::value> args) -> absl::StatusOr<json::value> {
    seen.assign(args.begin(), args.end());
    return Json(R"({"Data":{"ciphertext":"vault:v1:xyz"}})");
  };
  EXPECT_EQ(Out("{{ with secret \"transit/encrypt/k\" \"plaintext=aGk=\" }}{{ .Data.ciphertext }}"
                "{{ end }}",
                {}, {}, fns),
            "vault:v1:xyz");
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], json::value("transit/encrypt/k"));
  EXPECT_EQ(seen[1], json::value("plaintext=aGk="));
}

TEST(TemplateExec, CallerFunctionArgumentsAreEvaluatedAndPipedLast) {
  std::vector<json::value> seen;
  FunctionMap fns;
  fns["f"] = [&](std::span<const json::value> args) -> absl::StatusOr<json::value> {
    seen.assign(args.begin(), args.end());
    return json::value("r");
  };
  EXPECT_EQ(Out("{{ .p | f (printf \"%s/%d\" \"a\" 2) .missing }}", Json(R"({"p":[1]})"), {}, fns),
            "r");
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0], json::value("a/2"));
  EXPECT_TRUE(seen[1].is_null());  // a missing key arrives as null
  EXPECT_EQ(seen[2], Json("[1]"));
}

TEST(TemplateExec, CallerFunctionErrorStopsExecution) {
  FunctionMap fns;
  fns["secret"] = [](std::span<const json::value>) -> absl::StatusOr<json::value> {
    return absl::PermissionDeniedError("permission denied");
  };
  EXPECT_EQ(Out("ok\n{{ secret \"a\" }}", {}, {}, fns),
            "ERROR: template: t:2:3: executing \"t\" at <secret \"a\">: error calling secret: "
            "permission denied");
}

TEST(TemplateExec, CallerFunctionOverridesBuiltin) {
  FunctionMap fns;
  fns["env"] = [](std::span<const json::value>) -> absl::StatusOr<json::value> {
    return json::value("mine");
  };
  EXPECT_EQ(Out("{{ env \"HOME\" }}", {}, {}, fns), "mine");
}

TEST(TemplateExec, FieldsOnObjects) {
  EXPECT_EQ(Out("{{.a.b.c}} {{ .a.b }}", Json(R"({"a":{"b":{"c":"x"}}})")), "x map[c:x]");
}

TEST(TemplateExec, MissingKeyPrintsNoValue) {
  EXPECT_EQ(Out("{{.nope}} {{.a.nope}} {{.nope.deeper}}", Json(R"({"a":{}})")),
            "<no value> <no value> <no value>");
}

TEST(TemplateExec, MissingKeyErrorMode) {
  Options o;
  o.error_on_missing_key = true;
  EXPECT_EQ(Out("{{.a.b}}\n  {{.a.nope}}", Json(R"({"a":{"b":1}})"), o),
            "ERROR: template: t:2:4: executing \"t\" at <.a.nope>: map has no entry for key "
            "\"nope\"");
  EXPECT_EQ(
      Out("{{$x := .nope}}", Json("{}"), o),
      "ERROR: template: t:1:8: executing \"t\" at <.nope>: map has no entry for key \"nope\"");
}

TEST(TemplateExec, FieldOfNullIsAnError) {
  EXPECT_EQ(Out("{{.w.x}}", Json(R"({"w":null})")),
            "ERROR: template: t:1:2: executing \"t\" at <.w.x>: nil pointer evaluating "
            "interface {}.x");
}

TEST(TemplateExec, FieldOfNonObjectIsAnError) {
  EXPECT_EQ(Out("{{.s.x}}", Json(R"({"s":"secret-value"})")),
            "ERROR: template: t:1:2: executing \"t\" at <.s.x>: can't evaluate field x in type "
            "string");
  EXPECT_EQ(Out("{{.a 1}}", Json(R"({"a":1})")),
            "ERROR: template: t:1:2: executing \"t\" at <.a>: a is not a method but has "
            "arguments");
}

TEST(TemplateExec, ErrorContextIsShortened) {
  Options o;
  o.error_on_missing_key = true;
  EXPECT_EQ(Out("{{.abcdefghij.klmnopqrstuvwxyz}}", Json("{}"), o),
            "ERROR: template: t:1:2: executing \"t\" at <.abcdefghij.klmnopqr...>: map has no "
            "entry for key \"abcdefghij\"");
}

TEST(TemplateExec, NullPrintsNoValueAtTopAndNilInside) {
  EXPECT_EQ(
      Out("{{.n}} {{.a}} {{print .n}} {{.o}}", Json(R"({"n":null,"a":[null,1],"o":{"k":null}})")),
      "<no value> [<nil> 1] <nil> map[k:<nil>]");
}

TEST(TemplateExec, PrintsEveryKind) {
  EXPECT_EQ(Out("{{.s}}|{{.t}}|{{.f}}|{{.i}}|{{.neg}}|{{.u}}|{{.d}}|{{.e}}|{{.big}}|{{.small}}|"
                "{{.arr}}|{{.obj}}|{{.empty}}|{{.eo}}",
                Json(R"({"s":"str","t":true,"f":false,"i":42,"neg":-3,"u":18446744073709551615,)"
                     R"("d":1.5,"e":100000.0,"big":1e6,"small":0.00001,"arr":["a",1,[2,"b"]],)"
                     R"("obj":{"z":1,"a":{"y":"q"}},"empty":[],"eo":{}})")),
            "str|true|false|42|-3|18446744073709551615|1.5|100000|1e+06|1e-05|[a 1 [2 b]]|"
            "map[a:map[y:q] z:1]|[]|map[]");
}

TEST(TemplateExec, FloatsPrintLikeGo) {
  EXPECT_EQ(Out("{{.a}} {{.b}} {{.c}} {{.d}} {{.e}}",
                Json(R"({"a":123456.0,"b":1234567.0,"c":0.0001,"d":3.0,"e":-2.5e-7})")),
            "123456 1.234567e+06 0.0001 3 -2.5e-07");
}

TEST(TemplateExec, DotAndDollar) {
  EXPECT_EQ(Out("{{.}}", Json(R"("x")")), "x");
  EXPECT_EQ(Out("{{with .a}}{{.}}-{{$.b}}{{end}}", Json(R"({"a":"A","b":"B"})")), "A-B");
  EXPECT_EQ(Out("{{range .l}}{{$.p}}{{.}}{{end}}", Json(R"({"l":[1,2],"p":"-"})")), "-1-2");
  EXPECT_EQ(Out("{{.}}", json::value()), "<no value>");
}

TEST(TemplateExec, IfElseIfElse) {
  const std::string t = "{{if eq .n 1}}one{{else if eq .n 2}}two{{else}}many{{end}}";
  EXPECT_EQ(Out(t, Json(R"({"n":1})")), "one");
  EXPECT_EQ(Out(t, Json(R"({"n":2})")), "two");
  EXPECT_EQ(Out(t, Json(R"({"n":3})")), "many");
}

TEST(TemplateExec, Truth) {
  const std::string t =
      "{{range .l}}{{if .}}T{{else}}F{{end}}{{end}}|{{if .missing}}T{{else}}F{{end}}";
  EXPECT_EQ(Out(t, Json(R"({"l":[false,true,0,1,0.0,0.5,"","a",[],[0],{},{"a":0},null]})")),
            "FTFTFTFTFTFTF|F");
}

TEST(TemplateExec, WithElseWithElse) {
  const std::string t = "{{with .a}}a={{.}}{{else with .b}}b={{.}}{{else}}none{{end}}";
  EXPECT_EQ(Out(t, Json(R"({"a":"x","b":"y"})")), "a=x");
  EXPECT_EQ(Out(t, Json(R"({"b":"y"})")), "b=y");
  EXPECT_EQ(Out(t, Json(R"({"a":"","b":0})")), "none");
}

TEST(TemplateExec, WithSetsDotOnlyInside) {
  EXPECT_EQ(Out("{{with .a}}{{.b}}{{end}}{{.c}}", Json(R"({"a":{"b":1},"c":2})")), "12");
}

TEST(TemplateExec, RangeArrayWithIndex) {
  EXPECT_EQ(Out("{{range $i, $v := .}}{{$i}}={{$v}};{{end}}", Json(R"(["a","b"])")), "0=a;1=b;");
  EXPECT_EQ(Out("{{range $v := .}}{{$v}}{{end}}", Json(R"(["a","b"])")), "ab");
}

TEST(TemplateExec, RangeObjectIsSortedByKey) {
  EXPECT_EQ(Out("{{range $k, $v := .}}{{$k}}:{{$v}} {{end}}", Json(R"({"b":2,"a":1,"C":3})")),
            "C:3 a:1 b:2 ");
}

TEST(TemplateExec, RangeElse) {
  const std::string t = "{{range .}}x{{else}}empty{{end}}";
  EXPECT_EQ(Out(t, Json("[]")), "empty");
  EXPECT_EQ(Out(t, Json("{}")), "empty");
  EXPECT_EQ(Out(t, json::value()), "empty");
  EXPECT_EQ(Out("{{range .nope}}x{{else}}none{{end}}", Json("{}")), "none");
  EXPECT_EQ(Out(t, Json("[1]")), "x");
}

TEST(TemplateExec, RangeBreakAndContinue) {
  EXPECT_EQ(Out("{{range .}}{{if eq . 3}}{{break}}{{end}}{{.}}{{end}}", Json("[1,2,3,4]")), "12");
  EXPECT_EQ(Out("{{range .}}{{if eq . 2}}{{continue}}{{end}}{{.}}{{end}}", Json("[1,2,3]")), "13");
}

TEST(TemplateExec, BreakLeavesOnlyTheInnermostRange) {
  EXPECT_EQ(Out("{{range .}}[{{range .}}{{if eq . 2}}{{break}}{{end}}{{.}}{{end}}]{{end}}",
                Json("[[1,2,3],[4]]")),
            "[1][4]");
}

TEST(TemplateExec, RangeOverInteger) {
  EXPECT_EQ(
      Out("{{range 3}}{{.}}{{end}}|{{range $i := 2}}{{$i}}{{end}}|{{range 0}}x{{else}}e{{end}}"),
      "012|01|e");
}

TEST(TemplateExec, RangeOverScalarIsAnErrorWithoutTheValue) {
  EXPECT_EQ(Out("{{range .s}}{{end}}", Json(R"({"s":"hunter2"})")),
            "ERROR: template: t:1:8: executing \"t\" at <{{range .s}}{{end}}>: range can't "
            "iterate over value of type string");
}

TEST(TemplateExec, VariableDeclaredInsideIsNotVisibleAfterEnd) {
  EXPECT_EQ(Out("{{if 1}}{{$x := 1}}{{end}}{{$x}}"),
            "ERROR: template: t:1: undefined variable \"$x\"");
  EXPECT_EQ(Out("{{with $x := 1}}{{end}}{{$x}}"),
            "ERROR: template: t:1: undefined variable \"$x\"");
  EXPECT_EQ(Out("{{range $i, $v := .}}{{end}}{{$v}}"),
            "ERROR: template: t:1: undefined variable \"$v\"");
}

TEST(TemplateExec, VariableFromIfPipelineVisibleInElse) {
  EXPECT_EQ(Out("{{if $x := .a}}{{$x}}{{else}}[{{$x}}]{{end}}", Json(R"({"a":""})")), "[]");
}

TEST(TemplateExec, AssignmentToOuterVariableInRangePersists) {
  EXPECT_EQ(Out("{{$n := 0}}{{range .}}{{$n = .}}{{end}}{{$n}}", Json("[1,2,7]")), "7");
  EXPECT_EQ(Out("{{$found := false}}{{range .}}{{if eq . \"b\"}}{{$found = true}}{{end}}{{end}}"
                "{{$found}}",
                Json(R"(["a","b"])")),
            "true");
}

TEST(TemplateExec, ShadowingInsideRangeDoesNotLeak) {
  EXPECT_EQ(Out("{{$x := \"out\"}}{{range .}}{{$x := .}}{{$x}}{{end}}{{$x}}", Json("[1,2]")),
            "12out");
}

TEST(TemplateExec, DeclarationPrintsNothing) { EXPECT_EQ(Out("{{$x := 5}}[{{$x}}]"), "[5]"); }

TEST(TemplateExec, VariableFields) {
  EXPECT_EQ(Out("{{$s := .a}}{{$s.b.c}}", Json(R"({"a":{"b":{"c":"v"}}})")), "v");
}

TEST(TemplateExec, PipelinePassesValueAsLastArgument) {
  EXPECT_EQ(Out("{{\"b\" | printf \"%s-%s\" \"a\"}}"), "a-b");
  EXPECT_EQ(Out("{{.x | printf \"%d\" | printf \"<%s>\"}}", Json(R"({"x":4})")), "<4>");
}

TEST(TemplateExec, ParenthesizedPipelines) {
  EXPECT_EQ(Out("{{printf \"%s%s\" (print 1 2) (\"x\" | printf \"%s!\")}}"), "1 2x!");
  EXPECT_EQ(Out("{{(index . \"a\").b}}", Json(R"({"a":{"b":"B"}})")), "B");
}

TEST(TemplateExec, ArgumentToNonFunction) {
  EXPECT_EQ(Out("{{1 2}}"),
            "ERROR: template: t:1:2: executing \"t\" at <1>: can't give argument to "
            "non-function 1");
}

TEST(TemplateExec, DefineAndTemplate) {
  EXPECT_EQ(Out("{{define \"T\"}}<{{.}}>{{end}}{{template \"T\" .a}}{{template \"T\" \"s\"}}",
                Json(R"({"a":1})")),
            "<1><s>");
}

TEST(TemplateExec, TemplateHasItsOwnVariables) {
  EXPECT_EQ(Out("{{define \"T\"}}{{$x}}{{end}}"),
            "ERROR: template: t:1: undefined variable \"$x\"");
  EXPECT_EQ(Out("{{define \"T\"}}{{$}}{{end}}{{$y := 1}}{{template \"T\" 2}}"), "2");
}

TEST(TemplateExec, Block) { EXPECT_EQ(Out("{{block \"B\" .}}[{{.}}]{{end}}", Json("7")), "[7]"); }

TEST(TemplateExec, UndefinedTemplate) {
  EXPECT_EQ(Out("{{template \"nope\"}}"),
            "ERROR: template: t:1:11: executing \"t\" at <{{template \"nope\"}}>: template "
            "\"nope\" not defined");
}

TEST(TemplateExec, RecursiveTemplateStopsAtDepthLimit) {
  auto r = Render("{{define \"R\"}}{{template \"R\" .}}{{end}}{{template \"R\" .}}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("exceeded maximum template depth (100)"), std::string::npos)
      << r.status();
}

TEST(TemplateExec, ErrorNamesExecutingDefinedTemplate) {
  Options o;
  o.error_on_missing_key = true;
  EXPECT_EQ(Out("{{define \"T\"}}{{.x}}{{end}}{{template \"T\" .}}", Json("{}"), o),
            "ERROR: template: t:1:16: executing \"T\" at <.x>: map has no entry for key \"x\"");
}

}  // namespace
}  // namespace strongroom::tmpl::testing
