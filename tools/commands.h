/* commands.h — the subcommands of the llmc tool. Each takes the arguments
 * after its name (argv[0] is the subcommand) and returns the process exit
 * status: 0 success, 1 bad input or failure, 2 bad usage. */
#ifndef LLMC_TOOLS_COMMANDS_H
#define LLMC_TOOLS_COMMANDS_H

int llmc_cmd_logits(int argc, char **argv);  /* cmd_logits.c */
int llmc_cmd_inspect(int argc, char **argv); /* cmd_inspect.c */
int llmc_cmd_invoke(int argc, char **argv);  /* cmd_invoke.c */
int llmc_cmd_render_template(int argc, char **argv); /* cmd_render_template.c */
int llmc_cmd_bench(int argc, char **argv);   /* cmd_bench.c */
int llmc_cmd_bench_serve(int argc, char **argv); /* cmd_bench_serve.c */
int llmc_cmd_tokenize(int argc, char **argv); /* cmd_tokenize.c */
int llmc_cmd_run(int argc, char **argv);      /* cmd_run.c */
int llmc_cmd_serve(int argc, char **argv);    /* cmd_serve.c */
int llmc_cmd_perplexity(int argc, char **argv); /* cmd_perplexity.c */
int llmc_cmd_quantize(int argc, char **argv);   /* cmd_quantize.c */
#ifdef LLMC_WITH_COMPILER
int llmc_cmd_compile(int argc, char **argv); /* cmd_compile.c */
int llmc_cmd_import(int argc, char **argv);  /* cmd_compile.c */
int llmc_cmd_opt(int argc, char **argv);     /* cmd_opt.c */
#endif

#endif
