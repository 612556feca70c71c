/* kernels_embed.S — puts the CPU kernel library's LLVM bitcode (built by
 * CMake from kernels.c) into the llmc binary as llmc_kernels_x86_64_bc
 * [llmc_kernels_x86_64_bc_size bytes]. */
        .section .rodata
        .balign 16
        .globl llmc_kernels_x86_64_bc
llmc_kernels_x86_64_bc:
        .incbin LLMC_KERNEL_BC_PATH
llmc_kernels_x86_64_bc_end:
        .balign 8
        .globl llmc_kernels_x86_64_bc_size
llmc_kernels_x86_64_bc_size:
        .quad llmc_kernels_x86_64_bc_end - llmc_kernels_x86_64_bc
        .section .note.GNU-stack,"",@progbits
